#pragma once
/// Jobs packaged as shared libraries.
///
/// A job library is a shared object built against Freshet's headers that
/// defines its program with FRESHET_JOB_ENTRY:
///
///   int RunJob(int argc, char** argv) {
///     auto env = freshet::StreamExecutionEnvironment::Create();
///     ... build the job ...
///     return env->Execute("My Job").IsOk() ? 0 : 1;
///   }
///   FRESHET_JOB_ENTRY(RunJob)
///
/// `freshet run job.so args...` runs the program embedded; with `-m
/// host:port` it runs on a cluster. There the JobManager and every
/// TaskManager load the same library and run the program up to Execute()
/// with the same arguments, to rebuild the identical job graph (functions
/// are code, not data); Execute() then does not return to the program. So
/// a job program must build the same graph every time it runs with the
/// same arguments and must not depend on side effects before Execute().
///
/// The library does not link libfreshet: its references to Freshet resolve
/// to the process that loads it (`Freshet::job` in CMake sets this up).

/// Changes whenever the layout of a type shared between the engine and a
/// job library changes; a library built against another version is refused.
#define FRESHET_JOB_ABI_VERSION 1

#define FRESHET_JOB_ABI_STRINGIFY2(x) #x
#define FRESHET_JOB_ABI_STRINGIFY(x) FRESHET_JOB_ABI_STRINGIFY2(x)
/// The ABI a job library was compiled for: Freshet's ABI version, the C++
/// standard library's ABI and the compiler's major version.
#define FRESHET_JOB_ABI_STRING                                                                      \
  "freshet-job-abi " FRESHET_JOB_ABI_STRINGIFY(FRESHET_JOB_ABI_VERSION) " libstdc++-cxx11-abi " \
      FRESHET_JOB_ABI_STRINGIFY(_GLIBCXX_USE_CXX11_ABI) " gcc " FRESHET_JOB_ABI_STRINGIFY(__GNUC__)

/// Defines the two entry points the loader looks up: the program and the
/// ABI string. `fn` has the signature `int fn(int argc, char** argv)`.
#define FRESHET_JOB_ENTRY(fn)                                                                    \
  extern "C" __attribute__((visibility("default"))) const char* freshet_job_abi() {             \
    return FRESHET_JOB_ABI_STRING;                                                               \
  }                                                                                              \
  extern "C" __attribute__((visibility("default"))) int freshet_job_main(int argc, char** argv) { \
    return fn(argc, argv);                                                                       \
  }
