// examples/logstat.cpp: being written.
int main() { return 1; }
