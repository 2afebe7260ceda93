// tests/test_pipeline.cpp: being written.
#include <doctest/doctest.h>
