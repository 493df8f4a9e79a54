#include "cluster/job_library.h"

#include <dlfcn.h>
#include <elf.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "api/execution_context.h"
#include "freshet/job.h"

namespace freshet::internal {

namespace {

/// argv for the program: the library path as argv[0], then `args`; the
/// strings live as long as the vector of storage.
struct Argv {
  explicit Argv(const std::string& program, const std::vector<std::string>& args) {
    storage.push_back(program);
    storage.insert(storage.end(), args.begin(), args.end());
    for (std::string& s : storage) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  int Argc() const { return static_cast<int>(storage.size()); }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

std::string Hex(const unsigned char* data, unsigned int size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }
  std::string Finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_, digest, &size);
    return Hex(digest, size);
  }

 private:
  EVP_MD_CTX* ctx_;
};

/// Checks what the dynamic loader trusts without checking: a damaged or
/// truncated file whose segments reach past its end makes dlopen map
/// missing pages and the process dies of SIGBUS, so such a file must be
/// refused before it gets there.
Status CheckElf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto refuse = [&path](const std::string& why) {
    return Status::InvalidArgument(fmt::format("{} is not a loadable job library: {}", path, why));
  };
  Elf64_Ehdr header;
  if (bytes.size() < sizeof(header)) return refuse("too short for an ELF file");
  std::memcpy(&header, bytes.data(), sizeof(header));
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) return refuse("not an ELF file");
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB) {
    return refuse("not a 64-bit little-endian ELF file");
  }
  if (header.e_type != ET_DYN) return refuse("not a shared object");
  if (header.e_machine != EM_X86_64) return refuse(fmt::format("built for machine {}, not x86-64", header.e_machine));
  if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 ||
      header.e_phoff + uint64_t{header.e_phnum} * sizeof(Elf64_Phdr) > bytes.size()) {
    return refuse("its program headers are damaged or cut off");
  }
  for (int i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, bytes.data() + header.e_phoff + static_cast<size_t>(i) * sizeof(Elf64_Phdr), sizeof(ph));
    if (ph.p_type == PT_LOAD && (ph.p_offset > bytes.size() || ph.p_filesz > bytes.size() - ph.p_offset)) {
      return refuse(fmt::format("it is truncated ({} bytes; a segment reaches byte {})", bytes.size(),
                                ph.p_offset + ph.p_filesz));
    }
  }
  if (header.e_shoff != 0 && header.e_shoff + uint64_t{header.e_shnum} * header.e_shentsize > bytes.size()) {
    return refuse(fmt::format("it is truncated ({} bytes; its section headers end at byte {})", bytes.size(),
                              header.e_shoff + uint64_t{header.e_shnum} * header.e_shentsize));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  Sha256 sha;
  std::vector<char> chunk(1 << 16);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    sha.Update(chunk.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return Status::IoError(fmt::format("error reading {}", path));
  return sha.Finish();
}

std::string Sha256Hex(std::string_view bytes) {
  Sha256 sha;
  sha.Update(bytes.data(), bytes.size());
  return sha.Finish();
}

Result<std::shared_ptr<JobLibrary>> JobLibrary::Load(const std::string& path) {
  FRESHET_ASSIGN_OR_RETURN(std::string checksum, FileSha256(path));
  FRESHET_RETURN_IF_ERROR(CheckElf(path));
  // RTLD_NOW: a reference the process cannot resolve fails here, naming
  // the symbol, instead of aborting the process when first called.
  // RTLD_LOCAL: two jobs may define the same symbols.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    return Status::InvalidArgument(
        fmt::format("{} is not a loadable job library: {}", path, error != nullptr ? error : "unknown error"));
  }
  auto library = std::shared_ptr<JobLibrary>(new JobLibrary());
  library->path_ = path;
  library->checksum_ = std::move(checksum);
  library->handle_ = handle;
  auto abi = reinterpret_cast<const char* (*)()>(dlsym(handle, "freshet_job_abi"));
  library->main_ = reinterpret_cast<int (*)(int, char**)>(dlsym(handle, "freshet_job_main"));
  if (abi == nullptr || library->main_ == nullptr) {
    return Status::InvalidArgument(
        fmt::format("{} is not a Freshet job library: it defines no entry point (FRESHET_JOB_ENTRY in "
                    "<freshet/job.h>)",
                    path));
  }
  std::string theirs = abi();
  if (theirs != FRESHET_JOB_ABI_STRING) {
    return Status::InvalidArgument(fmt::format("{} was built for \"{}\"; this Freshet runs \"{}\": rebuild the job",
                                               path, theirs, FRESHET_JOB_ABI_STRING));
  }
  return library;
}

JobLibrary::~JobLibrary() {
  // Libraries stay mapped: objects they created (functions held by
  // finished jobs, thread-local destructors, registered types) may outlive
  // this handle, and unmapping their code under them would crash.
}

Result<int> JobLibrary::RunMain(const std::vector<std::string>& args, const Configuration& config) const {
  ExecutionContext context;
  context.config = config;
  ScopedExecutionContext scope(&context);
  Argv argv(path_, args);
  try {
    return main_(argv.Argc(), argv.pointers.data());
  } catch (const std::exception& e) {
    return Status::Internal(fmt::format("the program of {} failed: {}", path_, e.what()));
  } catch (...) {
    return Status::Internal(fmt::format("the program of {} failed with an exception that is not a std::exception",
                                        path_));
  }
}

Result<StreamGraph> JobLibrary::BuildPlan(const std::vector<std::string>& args, const Configuration& config) const {
  ExecutionContext context;
  context.config = config;
  context.capture_plan = true;
  ScopedExecutionContext scope(&context);
  Argv argv(path_, args);
  int code = 0;
  try {
    code = main_(argv.Argc(), argv.pointers.data());
  } catch (const PlanCaptured&) {
    if (context.captured) return std::move(*context.captured);
    return Status(context.plan_error.Code(),
                  fmt::format("the program of {} could not build its job: {}", path_, context.plan_error.Message()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("the program of {} failed before Execute(): {}", path_, e.what()));
  } catch (...) {
    return Status::InvalidArgument(fmt::format("the program of {} failed before Execute() with an exception that "
                                               "is not a std::exception",
                                               path_));
  }
  return Status::InvalidArgument(
      fmt::format("the program of {} returned {} without calling Execute(): no job to run", path_, code));
}

std::string GraphFingerprint(const JobGraph& job) {
  const StreamGraph& graph = *job.stream_graph;
  std::string text;
  for (const JobVertex& v : job.vertices) {
    text += fmt::format("V{} p{} m{} g{}|", v.id, v.parallelism, v.max_parallelism, v.slot_sharing_group);
    for (int node : v.chain) {
      const StreamNode& n = graph.Node(node);
      text += fmt::format("  N{} {} uid={} k{}|", n.id, n.name, n.uid, static_cast<int>(n.kind));
    }
  }
  for (const StreamEdge& e : graph.edges) {
    text += fmt::format("E{} {}->{} in{} {} {}|", e.id, e.source, e.target, e.target_input,
                        PartitionerName(e.Kind()), e.side_output_tag);
  }
  return Sha256Hex(text);
}

}  // namespace freshet::internal
