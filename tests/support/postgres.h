#pragma once
// A PostgreSQL server of the test's own, as an oracle for query results:
// a fresh cluster (initdb) in a temporary directory, listening on loopback
// at a free port, stopped and removed with the object. Runs the server as
// the `postgres` system user when the test runs as root (PostgreSQL
// refuses root). Needs Debian's postgresql and libpq-dev.

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace freshet::test_support {

class PostgresServer {
 public:
  using Rows = std::vector<std::vector<std::string>>;

  /// Starts the server; throws std::runtime_error with the server's log
  /// when it does not come up.
  PostgresServer() {
    bin_ = Output("pg_config --bindir");
    if (bin_.empty()) throw std::runtime_error("pg_config not found (Debian package libpq-dev)");
    char pattern[] = "/tmp/freshet-postgres-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    if (::geteuid() == 0) {
      const passwd* user = ::getpwnam("postgres");
      if (user == nullptr) throw std::runtime_error("running as root and there is no 'postgres' user");
      if (::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) throw std::runtime_error("chown failed");
      as_ = "runuser -u postgres -- ";
    }
    port_ = FreePort();
    Run(bin_ + "/initdb -D " + dir_ + "/data -A trust -U freshet -E UTF8 --no-sync > " + dir_ + "/initdb.log 2>&1",
        "initdb");
    Run(bin_ + "/pg_ctl -D " + dir_ + "/data -w -t 60 -l " + dir_ + "/server.log -o \"-p " + std::to_string(port_) +
            " -k " + dir_ + " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off\" start > " + dir_ +
            "/pg_ctl.log 2>&1",
        "pg_ctl start");
    started_ = true;
    std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) + " user=freshet dbname=postgres";
    conn_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error("cannot connect: " + Error());
  }
  ~PostgresServer() {
    if (conn_ != nullptr) PQfinish(conn_);
    if (started_) {
      std::string stop = as_ + bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate stop > /dev/null 2>&1";
      if (std::system(stop.c_str()) != 0) std::fprintf(stderr, "pg_ctl stop failed\n");
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// Runs `sql`; the rows of its result as text (NULL as "NULL"). Throws
  /// with PostgreSQL's message on an error.
  Rows Query(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      std::string message = PQresultErrorMessage(result);
      PQclear(result);
      throw std::runtime_error("PostgreSQL: " + message + " in: " + sql);
    }
    Rows rows;
    for (int r = 0; r < PQntuples(result); ++r) {
      auto& row = rows.emplace_back();
      for (int c = 0; c < PQnfields(result); ++c) {
        row.push_back(PQgetisnull(result, r, c) ? "NULL" : PQgetvalue(result, r, c));
      }
    }
    PQclear(result);
    return rows;
  }

  /// Loads `text` (COPY's text format: tab-separated fields, one row per
  /// line) into `table`.
  void Copy(const std::string& table, const std::string& text) {
    PGresult* result = PQexec(conn_, ("COPY " + table + " FROM STDIN").c_str());
    bool ok = PQresultStatus(result) == PGRES_COPY_IN;
    PQclear(result);
    if (!ok) throw std::runtime_error("COPY " + table + ": " + Error());
    if (PQputCopyData(conn_, text.data(), static_cast<int>(text.size())) != 1 || PQputCopyEnd(conn_, nullptr) != 1) {
      throw std::runtime_error("COPY " + table + ": " + Error());
    }
    result = PQgetResult(conn_);
    ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    std::string message = PQresultErrorMessage(result);
    PQclear(result);
    while ((result = PQgetResult(conn_)) != nullptr) PQclear(result);
    if (!ok) throw std::runtime_error("COPY " + table + ": " + message);
  }

 private:
  static std::string Output(const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen((command + " 2>/dev/null").c_str(), "r"), ::pclose);
    if (!pipe) return {};
    std::string out;
    char buffer[256];
    while (std::fgets(buffer, sizeof(buffer), pipe.get()) != nullptr) out += buffer;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("no free port");
    }
    int port = ntohs(address.sin_port);
    ::close(fd);
    return port;
  }
  void Run(const std::string& command, const char* what) {
    if (std::system((as_ + "sh -c '" + command + "'").c_str()) != 0) {
      std::string log;
      for (const char* name : {"/initdb.log", "/pg_ctl.log", "/server.log"}) {
        std::ifstream in(dir_ + name);
        log += std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
      throw std::runtime_error(std::string(what) + " failed: " + log);
    }
  }
  std::string Error() const { return conn_ != nullptr ? PQerrorMessage(conn_) : "no connection"; }

  std::string bin_;
  std::string dir_;
  std::string as_;  // runs server commands as the postgres user when root
  int port_ = 0;
  bool started_ = false;
  PGconn* conn_ = nullptr;
};

}  // namespace freshet::test_support
