#!/usr/bin/env python3
"""Runs the whole test suite and ends with one line: "N passed, N failed".

Stages (each counted per test case where the runner reports cases):
  build     a normal build (build/) and an ASan+UBSan build (build-asan/)
  unit      every cmocka binary of both builds
  integ     the Python integration tests against the daemons of both builds
  browser   the web UI and pages in headless Chromium (normal build)
  fuzz      each libFuzzer target for a short, bounded time (clang build)
  format    clang-format of every C source

Options: --quick (normal build only, no fuzzing), --fuzz-seconds N.
Every server a test needs is started by the test itself on free loopback
ports and stopped after it.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = str(max(2, os.cpu_count() or 2))
passed = failed = skipped = 0
failures = []


def log(msg):
    print(msg, flush=True)


def count(ok, n_pass, n_fail, what):
    global passed, failed
    passed += n_pass
    failed += n_fail
    if n_fail or not ok:
        failures.append(what)


def run(cmd, env=None, timeout=1800, quiet=False):
    e = dict(os.environ)
    e.update(env or {})
    t = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True,
                       timeout=timeout)
    out = p.stdout + p.stderr
    if p.returncode != 0 and not quiet:
        log(out[-6000:])
    return p.returncode, out, time.monotonic() - t


def build(builddir, *flags, cc=None):
    env = {"CC": cc} if cc else {}
    rc, out, secs = run(["cmake", "-S", ".", "-B", builddir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
                        + list(flags), env=env)
    if rc == 0:
        rc, out, secs2 = run(["cmake", "--build", builddir, "-j", JOBS])
        secs += secs2
    log("build %-12s %s (%.0f s)" % (builddir, "ok" if rc == 0 else "FAILED", secs))
    count(rc == 0, rc == 0, rc != 0, "build " + builddir)
    return rc == 0


SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=87",
    "LSAN_OPTIONS": "exitcode=88:suppressions=" + os.path.join(ROOT, "tests", "lsan.supp"),
}


def unit(builddir, sanitized):
    bins = sorted(glob.glob(os.path.join(ROOT, builddir, "test_*")))
    for b in bins:
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            continue
        rc, out, secs = run([b], env=SAN_ENV if sanitized else {}, timeout=600,
                            quiet=True)
        p = sum(int(m) for m in re.findall(r"\[  PASSED  \] (\d+) test", out))
        f = sum(int(m) for m in re.findall(r"\[  FAILED  \] (\d+) test", out))
        if rc != 0 and f == 0:
            f = 1
            log(out[-4000:])
        elif f:
            log(out[-4000:])
        name = "%s/%s" % (builddir, os.path.basename(b))
        log("unit  %-34s %3d passed %3d failed (%.1f s)" % (name, p, f, secs))
        count(rc == 0, p, f, name)


def integ(builddir, sanitized):
    env = {"SS_BUILD": builddir, "PYTHONDONTWRITEBYTECODE": "1"}
    if sanitized:
        env.update(SAN_ENV)
        env["SS_SANITIZED"] = "1"
    rc, out, secs = run([sys.executable, "-m", "unittest", "discover", "-v", "-s",
                         "tests/integration", "-p", "test_*.py"], env=env,
                        timeout=1800, quiet=True)
    global skipped
    p = len(re.findall(r"\.\.\. ok$", out, re.M))
    sk = len(re.findall(r"\.\.\. skipped", out, re.M))
    skipped += sk
    f = len(re.findall(r"\.\.\. (FAIL|ERROR)$", out, re.M))
    m = re.search(r"^FAILED \((.*)\)$", out, re.M)
    if rc != 0:
        log(out[-8000:])
        if f == 0:
            f = 1
    log("integ %-34s %3d passed %3d failed %3d skipped (%.0f s)" % (builddir, p, f, sk, secs))
    count(rc == 0 and not m, p, f, "integration " + builddir)


def fuzz(builddir, seconds):
    for b in sorted(glob.glob(os.path.join(ROOT, builddir, "fuzz_*"))):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            continue
        name = os.path.basename(b)
        # seeds: tests/fuzz/corpus_<target>/ when the target has its own
        corpus = os.path.join(ROOT, "tests", "fuzz", "corpus_" + name[len("fuzz_"):])
        if not os.path.isdir(corpus):
            corpus = os.path.join(ROOT, "tests", "fuzz", "corpus")
        work = os.path.join(ROOT, builddir, "corpus", name)
        os.makedirs(work, exist_ok=True)
        rc, out, secs = run([b, "-max_total_time=%d" % seconds, "-timeout=10",
                             "-rss_limit_mb=2048", work, corpus], timeout=seconds + 120,
                            quiet=True)
        execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
        runs = re.findall(r"#(\d+)\s+DONE", out)
        if rc != 0:
            log(out[-6000:])
        log("fuzz  %-34s %s (%s runs in %d s)" % (name, "ok" if rc == 0 else "CRASHED",
                                                  (runs or execs or ["?"])[-1], seconds))
        count(rc == 0, rc == 0, rc != 0, "fuzz " + name)


def browser(builddir):
    rc, out, secs = run(["bash", "tests/browser/run.sh"], env={"SS_BUILD": builddir},
                        timeout=600, quiet=True)
    m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
    p, f = (int(m[-1][0]), int(m[-1][1])) if m else (0, 1)
    if rc != 0 and f == 0:
        f = 1
    if rc != 0:
        log(out[-6000:])
    log("browser %-32s %3d passed %3d failed (%.0f s)" % (builddir, p, f, secs))
    count(rc == 0, p, f, "browser " + builddir)


def fmt():
    files = [f for pat in ("proto/*.[ch]", "runtime/*.[ch]", "services/*/*.[ch]",
                           "tools/*.[ch]", "tests/unit/*.[ch]", "tests/fuzz/*.c", "bench/*.c")
             for f in glob.glob(os.path.join(ROOT, pat))]
    rc, out, _ = run(["clang-format", "--dry-run", "-Werror"] + files, quiet=True)
    if rc != 0:
        log(out[-3000:])
    log("format %d files %s" % (len(files), "ok" if rc == 0 else "NOT FORMATTED"))
    count(rc == 0, rc == 0, rc != 0, "clang-format")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fuzz-seconds", type=int, default=30)
    args = ap.parse_args()
    t0 = time.monotonic()
    fmt()
    if build("build"):
        unit("build", False)
        integ("build", False)
        browser("build")
    if not args.quick:
        if build("build-asan", "-DSS_SANITIZE=ON"):
            unit("build-asan", True)
            integ("build-asan", True)
        if build("build-fuzz", "-DSS_FUZZ=ON", cc="clang"):
            fuzz("build-fuzz", args.fuzz_seconds)
    log("")
    log("total %.0f s" % (time.monotonic() - t0))
    if failures:
        log("failed: " + ", ".join(failures))
    log("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
