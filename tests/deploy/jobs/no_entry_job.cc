// A shared library without Freshet's entry points.
extern "C" int some_other_function() { return 42; }
