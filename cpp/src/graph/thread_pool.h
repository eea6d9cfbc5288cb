// A fork-join pool owned by one executor: run(n, fn) hands tasks 0..n-1 to the
// calling thread and threads-1 helpers through an atomic counter. Which thread runs
// which task varies; callers make every task write its own outputs with a fixed
// sequence of operations, so results never depend on the thread count.
#pragma once
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "seedcore/graph_kernels.h"

namespace seedcore {

class ThreadPool final : public TaskRunner {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  unsigned workers() const override { return unsigned(helpers_.size()) + 1; }
  void run(size_t n, const std::function<void(size_t, unsigned)>& fn) override;

 private:
  void helper_loop(unsigned worker);
  void work(unsigned worker);

  std::vector<std::thread> helpers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t, unsigned)>* job_ = nullptr;
  size_t n_tasks_ = 0;
  std::atomic<size_t> next_{0};
  unsigned busy_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace seedcore
