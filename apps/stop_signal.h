// A clean stop on SIGINT / SIGTERM for dcgan_train and dcgan_sample: the first signal only records
// itself (the program polls stop_signal() between steps or files and winds down), a second one ends
// the process at once with the default action.
#pragma once

namespace cudagan::apps {

// Installs the handlers for SIGINT and SIGTERM. The first of them sets the flag and restores both
// signals' default action, so a second signal (of either kind) terminates the process immediately.
void install_stop_handlers();

// 0 while no signal has arrived, else its number (SIGINT or SIGTERM).
int stop_signal();

// "SIGINT", "SIGTERM" (or "a signal"), and the exit status that reports it: 128 + the signal's number.
const char* signal_name(int signal);
inline int signal_exit_code(int signal) { return 128 + signal; }

}  // namespace cudagan::apps
