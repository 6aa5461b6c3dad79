// What running `lightboat serve` processes have loaded, for `lightboat models` (its LOADED
// column): each server keeps <root>/run/serve-<pid>.json up to date — rewritten atomically
// (store/fs.h) whenever a model loads or unloads, removed on a clean exit. A server killed
// without that cleanup leaves its file behind: readers ignore the files of processes that are
// gone and remove them. A process is identified by its pid and its start time (field 22 of
// /proc/<pid>/stat), so a recycled pid does not make a stale file look alive.
//
// {"pid": 1234, "start_time": 5678, "models": [{"name": "llama3.2:1b", "version": "sha256:<hex>"}]}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lightboat::store {

struct ServedModel {
  std::string name;     // the server's name for it
  std::string version;  // "sha256:<hex>" for a store blob; a file's identity otherwise
};

struct ServeRecord {
  int64_t pid = 0;
  std::vector<ServedModel> models;
};

// <root>/run/serve-<this pid>.json := `models` (directories made as needed). Throws Error(kIo).
void write_serve_record(const std::string& root, const std::vector<ServedModel>& models);
// Removes this process's record; never throws (a clean exit must not fail on it).
void remove_serve_record(const std::string& root);
// The records of live servers; those of dead processes are removed (best effort). A missing or
// unreadable run/ directory, or a corrupt file, yields no record for it, never an error.
std::vector<ServeRecord> live_serve_records(const std::string& root);

}  // namespace lightboat::store
