# Cross-compile for Jetson Nano (Cortex-A57, AArch64 Linux) with Debian's
# g++-aarch64-linux-gnu; tests run under qemu-user as a Cortex-A57.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CXX_FLAGS_INIT "-mcpu=cortex-a57")
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-a57")
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-cpu;cortex-a57;-L;/usr/aarch64-linux-gnu)
# Test binaries are linked statically (see cpp/tests/CMakeLists.txt), so -L is only
# a fallback for anything dynamic.
set(SEEDCORE_STATIC_TESTS ON CACHE BOOL "Link test binaries statically")
