// tests/test_io.cpp: being written.
#include <doctest/doctest.h>
