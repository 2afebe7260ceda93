// runtime/pipeline.cpp: being written.
