#include "graph/thread_pool.h"

namespace seedcore {

ThreadPool::ThreadPool(unsigned threads) {
  if (threads < 1) threads = 1;
  for (unsigned w = 1; w < threads; ++w) helpers_.emplace_back([this, w] { helper_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : helpers_) t.join();
}

void ThreadPool::work(unsigned worker) {
  for (;;) {
    const size_t t = next_.fetch_add(1);
    if (t >= n_tasks_) return;
    try {
      (*job_)(t, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_tasks_);  // stop handing out tasks
    }
  }
}

void ThreadPool::helper_loop(unsigned worker) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    work(worker);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::run(size_t n, const std::function<void(size_t, unsigned)>& fn) {
  if (helpers_.empty() || n <= 1) {
    for (size_t t = 0; t < n; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    n_tasks_ = n;
    next_.store(0);
    busy_ = unsigned(helpers_.size());
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  work(0);
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    job_ = nullptr;
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace seedcore
