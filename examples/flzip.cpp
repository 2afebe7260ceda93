// examples/flzip.cpp: being written.
int main() { return 1; }
