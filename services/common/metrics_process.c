/* The process families every daemon serves. The process_* names are those of the Prometheus
 * client libraries' process collector, so dashboards and alerts written for any exporter
 * (memory growth, descriptor leaks, restarts by start time) work on ours unchanged. */
#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "linkage/metrics.h"

/* Resident and virtual bytes from /proc/self/statm (pages); -1 when unreadable. */
static void memory_bytes(double *rss, double *vsz) {
  long pages_vsz = -1, pages_rss = -1;
  long page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/statm", "r");
  *rss = *vsz = -1;
  if (!f) return;
  if (fscanf(f, "%ld %ld", &pages_vsz, &pages_rss) == 2 && page > 0) {
    *vsz = (double)pages_vsz * (double)page;
    *rss = (double)pages_rss * (double)page;
  }
  fclose(f);
}

/* Open descriptors: the entries of /proc/self/fd, less the one opendir holds; -1 if unreadable. */
static double open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  double n = 0;
  if (!d) return -1;
  for (struct dirent *e = readdir(d); e; e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;
}

void lk_metrics_process(struct lk_metrics_writer *w, const char *service, double started_s,
                        long restarts) {
  struct rusage ru;
  struct rlimit rl;
  double rss, vsz, fds = open_fds();

  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    lk_metrics_single(w, "process_cpu_seconds_total", LK_METRIC_COUNTER,
                      "user and system CPU time spent, in seconds", cpu);
  }
  memory_bytes(&rss, &vsz);
  if (rss >= 0) {
    lk_metrics_single(w, "process_resident_memory_bytes", LK_METRIC_GAUGE,
                      "resident memory size in bytes", rss);
    lk_metrics_single(w, "process_virtual_memory_bytes", LK_METRIC_GAUGE,
                      "virtual memory size in bytes", vsz);
  }
  if (fds >= 0)
    lk_metrics_single(w, "process_open_fds", LK_METRIC_GAUGE, "open file descriptors", fds);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    lk_metrics_single(w, "process_max_fds", LK_METRIC_GAUGE, "the limit on open file descriptors",
                      (double)rl.rlim_cur);
  lk_metrics_single(w, "process_start_time_seconds", LK_METRIC_GAUGE,
                    "start time of the process since the Unix epoch, in seconds", started_s);
  lk_metrics_family(w, "linkage_service_info", LK_METRIC_GAUGE,
                    "always 1; the label names the daemon behind this endpoint");
  lk_metrics_sample(w, 1, "service", service);
  lk_metrics_single(w, "linkage_service_restarts", LK_METRIC_GAUGE,
                    "times the supervisor (linkagectl run) had restarted this daemon before "
                    "this process started; 0 when it runs on its own",
                    (double)restarts);
}
