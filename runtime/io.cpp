// runtime/io.cpp: being written.
