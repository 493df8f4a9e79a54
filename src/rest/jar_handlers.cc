// /jars/...: uploading job libraries, listing, planning, running and
// deleting them. Flink calls them jars; here they are shared objects
// defining FRESHET_JOB_ENTRY.

#include <fmt/format.h>

#include "rest/job_plan.h"
#include "rest/rest_handlers.h"

namespace freshet::internal {

namespace {

/// The run (or plan) request from a JSON body, as Flink's
/// JarRunRequestBody: entryClass (a job library has one entry point: any
/// value is accepted and ignored), programArgs (one string, split like a
/// shell's words) or programArgsList, parallelism, savepointPath,
/// allowNonRestoredState, flinkConfiguration (extra settings). Other
/// fields are ignored.
Result<JarRunRequest> ParseRunRequest(const RestRequest& req) {
  FRESHET_ASSIGN_OR_RETURN(nlohmann::json body, JsonBody(req));
  JarRunRequest run;
  FRESHET_ASSIGN_OR_RETURN(std::optional<std::string> entry, StringField(body, "entryClass"));
  (void)entry;
  FRESHET_ASSIGN_OR_RETURN(std::optional<std::string> args, StringField(body, "programArgs"));
  FRESHET_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> list, StringListField(body, "programArgsList"));
  if (args && list) return Status::InvalidArgument("give either 'programArgs' or 'programArgsList', not both");
  if (list) run.args = std::move(*list);
  if (args) {
    FRESHET_ASSIGN_OR_RETURN(run.args, SplitArguments(*args));
  }
  FRESHET_ASSIGN_OR_RETURN(std::optional<int64_t> parallelism, IntField(body, "parallelism"));
  // GET /jars/:jarid/plan takes its parameters from the query, as Flink's does.
  if (!parallelism) {
    auto q = req.query.find("parallelism");
    if (q != req.query.end() && !q->second.empty()) {
      try {
        size_t used = 0;
        parallelism = std::stoll(q->second, &used);
        if (used != q->second.size()) throw std::invalid_argument("trailing characters");
      } catch (const std::exception&) {
        return Status::InvalidArgument(fmt::format("query parameter 'parallelism' must be an integer, got '{}'",
                                                   q->second.substr(0, 40)));
      }
    }
  }
  if (parallelism) {
    if (*parallelism < 1 || *parallelism > 32768) {
      return Status::InvalidArgument(
          fmt::format("field 'parallelism' must be a number from 1 to 32768, got {}", *parallelism));
    }
    run.parallelism = static_cast<int>(*parallelism);
  }
  if (run.args.empty()) {
    auto q = req.query.find("programArg");
    if (q != req.query.end()) {
      FRESHET_ASSIGN_OR_RETURN(run.args, SplitArguments(q->second));
    }
  }
  FRESHET_ASSIGN_OR_RETURN(std::optional<std::string> savepoint, StringField(body, "savepointPath"));
  if (savepoint) run.savepoint_path = *savepoint;
  FRESHET_ASSIGN_OR_RETURN(std::optional<bool> allow, BoolField(body, "allowNonRestoredState"));
  run.allow_non_restored_state = allow.value_or(false);
  auto config = body.find("flinkConfiguration");
  if (config != body.end() && !config->is_null()) {
    if (!config->is_object()) {
      return Status::InvalidArgument("field 'flinkConfiguration' must be an object of settings");
    }
    for (const auto& [key, value] : config->items()) {
      if (value.is_string()) {
        run.config[key] = value.get<std::string>();
      } else if (value.is_number() || value.is_boolean()) {
        run.config[key] = value.dump();
      } else {
        return Status::InvalidArgument(
            fmt::format("setting '{}' of 'flinkConfiguration' must be a string, number or boolean", key));
      }
    }
  }
  return run;
}

}  // namespace

void AddJarHandlers(RestRouter& router, const RestContext& ctx) {
  Dispatcher& dispatcher = *ctx.dispatcher;

  router.Add("GET", "/jars", [&ctx, &dispatcher](const RestRequest&) {
    nlohmann::json files = nlohmann::json::array();
    for (const JarInfo& jar : dispatcher.Jars()) {
      files.push_back({{"id", jar.id},
                       {"name", jar.name},
                       {"uploaded", jar.uploaded_ms},
                       {"entry", nlohmann::json::array({{{"name", "freshet_job_main"}, {"description", nullptr}}})}});
    }
    return JsonResponse(200, {{"address", ctx.address ? ctx.address() : ""}, {"files", std::move(files)}});
  });

  router.Add("POST", "/jars/upload", [&dispatcher](const RestRequest& req) {
    const RestUpload* file = nullptr;
    for (const RestUpload& u : req.uploads) {
      if (u.field == "jarfile") file = &u;
    }
    if (file == nullptr) {
      return ErrorResponse(400, "the upload must be a multipart/form-data body with the job library in the field "
                                "'jarfile'");
    }
    Result<JarInfo> jar = dispatcher.UploadJar(file->filename, file->content);
    if (!jar.IsOk()) return ErrorResponse(jar.GetStatus());
    return JsonResponse(200, {{"filename", jar->path}, {"status", "success"}});
  });

  router.Add("DELETE", "/jars/:jarid", [&dispatcher](const RestRequest& req) {
    Status s = dispatcher.DeleteJar(req.Param("jarid"));
    if (!s.IsOk()) return ErrorResponse(s);
    return JsonResponse(200, nlohmann::json::object());
  });

  RestHandler plan = [&dispatcher](const RestRequest& req) {
    Result<JarRunRequest> run = ParseRunRequest(req);
    if (!run.IsOk()) return ErrorResponse(run.GetStatus());
    Result<std::shared_ptr<const JobGraph>> graph = dispatcher.PlanJar(req.Param("jarid"), *run);
    if (!graph.IsOk()) return ErrorResponse(graph.GetStatus());
    return JsonResponse(200, {{"plan", JobPlanJson(**graph)}});
  };
  router.Add("GET", "/jars/:jarid/plan", plan);
  router.Add("POST", "/jars/:jarid/plan", plan);

  router.Add("POST", "/jars/:jarid/run", [&dispatcher](const RestRequest& req) {
    Result<JarRunRequest> run = ParseRunRequest(req);
    if (!run.IsOk()) return ErrorResponse(run.GetStatus());
    Result<std::string> job_id = dispatcher.RunJar(req.Param("jarid"), *run);
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    return JsonResponse(200, {{"jobid", *job_id}});
  });
}

}  // namespace freshet::internal
