// The one piece of global mutable state in the programs, and why: a signal handler receives no context
// and may only touch a `volatile std::sig_atomic_t` (or a lock-free atomic), so the flag it sets must
// live at namespace scope. It is written only by the handler and read only through stop_signal().
#include "stop_signal.h"

#include <signal.h>

#include <csignal>

namespace cudagan::apps {

namespace {
volatile std::sig_atomic_t g_stop_signal = 0;

void restore_default(int sig) {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(sig, &action, nullptr);  // async-signal-safe (POSIX), unlike std::signal's guarantees
}

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) {  // a second one that was already on its way to this handler: end now
    restore_default(sig);
    raise(sig);
    return;
  }
  g_stop_signal = sig;
  restore_default(SIGINT);
  restore_default(SIGTERM);
}
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  // Both blocked while the handler runs: a second signal sent at once then waits for the default
  // action instead of entering the handler too (Linux delivers every pending signal before returning).
  sigemptyset(&action.sa_mask);
  sigaddset(&action.sa_mask, SIGINT);
  sigaddset(&action.sa_mask, SIGTERM);
  action.sa_flags = SA_RESTART;  // a read or write in progress carries on instead of failing with EINTR
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stop_signal() { return int(g_stop_signal); }

const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "a signal";
  }
}

}  // namespace cudagan::apps
