// Dropping root once the privileged work of start-up is done (the capture handle and the sockets are open).
#pragma once

#include <string>

namespace rampart::actors {

// Switches every thread of the process to USER (name from the password database) and its primary group,
// with no supplementary groups. From root this clears the permitted, effective and ambient capability sets
// of every thread (unless the launcher set SECBIT_KEEP_CAPS: then the check below fails), and no_new_privs is
// set on the calling thread so nothing it executes can regain any. Already running as USER: nothing to do,
// true. Returns false with *ERROR when USER is unknown, when the process is neither root nor USER, or when any
// thread kept a permitted, effective or ambient capability afterwards.
bool drop_privileges(const std::string& user, std::string* error);

// The permitted, effective and ambient capability sets of every thread of this process, OR-ed (0: none). -1
// when /proc cannot be read.
long long capabilities_of_all_threads();

}  // namespace rampart::actors
