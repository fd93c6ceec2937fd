# incident-console stats sampler (awk: mawk -W interactive, gawk, busybox awk).
#
# One long-lived process per host. It starts no process of its own: every file is read with
# getline and closed again. The console paces it: each "tick" line on stdin produces one frame.
#
#   stdin:  set KEY MEMDIR CPUDIR [KEY MEMDIR CPUDIR ...]   the containers' cgroup folders
#           tick                                            print one frame
#           quit                                            exit (end of input does too)
#   stdout: T TICK UPTIME MODE
#           M MEMTOTAL_KB MEMAVAILABLE_KB SWAPTOTAL_KB SWAPFREE_KB
#           S PSI_SOME_AVG10 PSI_FULL_AVG10                 when /proc/pressure/memory reads
#           C KEY USAGE INACTIVE_FILE LIMIT CPU SWAP        "-" where a file did not read
#           X KEY                                           the container's usage did not read
#           P KEY PID VMRSS_KB NAME                         every 5th tick and after a set
#           N KEY PID NSPID ANON_KB                         after its P line: the pid inside
#                                                           the container's pid namespace and
#                                                           RssAnon ("-" where absent)
#           O KEY OOM_KILL OOM                              every tick (sh sampler: every 5th)
#           V OOM_KILL                                      every tick (sh sampler: every 5th)
#           Q KEY PEAK PRESSURE_SOME_AVG10                  v2 only, every 5th tick and after a set
#           E
#
# O: the container's OOM kill counter (kills of its processes, by any OOM) and whether its own
# limit was hit: v2 memory.events `oom_kill` and `oom` (a counter); v1 memory.oom_control
# `oom_kill` (kernels >= 4.13) and `under_oom` (0/1, at the moment read). V: /proc/vmstat
# `oom_kill`, the host's total. All readable without root, unlike the kernel log.
# Q: what v2 adds per container: memory.peak (its high-water mark) and memory.pressure's
# `some avg10` (the share of the last 10 s in which its tasks stalled on memory).
#
# Values are printed as read (strings): awk's doubles would mangle 2^63-sized limits.
# -v mode=v1: memory.usage_in_bytes, memory.stat (total_inactive_file, and the limit in effect
#             as hierarchical_memory_limit: one file fewer per container than limit_in_bytes),
#             cpuacct.usage (ns), memory.memsw.usage_in_bytes (memory+swap);
#             mode=v2: memory.current, memory.stat inactive_file, memory.max,
#             cpu.stat usage_usec, memory.swap.current.
#
# A frame is built in one string and written with ONE printf: mawk -W interactive (needed so
# it reads each tick as it comes) writes stdout unbuffered, one write(2) per print item: 900
# writes a frame for 54 containers, and every one woke sshd to send its own SSH packet.

function first(path,    line, n, f, r) {
    r = "-"
    if ((getline line < path) > 0) {
        n = split(line, f, " ")
        if (n > 0) r = f[1]
    }
    close(path)
    return r
}

function keyed(path, key,    line, n, f, r) {
    r = "-"
    while ((getline line < path) > 0) {
        n = split(line, f, " ")
        if (f[1] == key) { r = f[2]; break }
    }
    close(path)
    return r
}

# v1 memory.stat, read once: sets st_inactive and st_limit ("-" where absent).
function v1stat(path,    line, n, f) {
    st_inactive = "-"; st_limit = "-"
    while ((getline line < path) > 0) {
        n = split(line, f, " ")
        if (f[1] == "hierarchical_memory_limit") st_limit = f[2]
        else if (f[1] == "total_inactive_file") { st_inactive = f[2]; break }
    }
    close(path)
}

function meminfo(    line, n, f, total, avail, stotal, sfree) {
    total = "-"; avail = "-"; stotal = "-"; sfree = "-"
    while ((getline line < "/proc/meminfo") > 0) {
        n = split(line, f, " ")
        if (f[1] == "MemTotal:") total = f[2]
        else if (f[1] == "MemAvailable:") avail = f[2]
        else if (f[1] == "SwapTotal:") stotal = f[2]
        else if (f[1] == "SwapFree:") { sfree = f[2]; break }
    }
    close("/proc/meminfo")
    out = out "M " total " " avail " " stotal " " sfree "\n"
}

function pressure(    line, n, f, some, full, got) {
    some = "-"; full = "-"; got = 0
    while ((getline line < "/proc/pressure/memory") > 0) {
        n = split(line, f, " ")
        got = 1
        if (f[1] == "some") { sub(/^avg10=/, "", f[2]); some = f[2] }
        else if (f[1] == "full") { sub(/^avg10=/, "", f[2]); full = f[2] }
    }
    close("/proc/pressure/memory")
    if (got) out = out "S " some " " full "\n"
}

function container(key, mdir, cdir,    usage, inactive, limit, cpu, swap) {
    if (mode == "v2") {
        usage = first(mdir "/memory.current")
        if (usage == "-") { out = out "X " key "\n"; return }
        inactive = keyed(mdir "/memory.stat", "inactive_file")
        limit = first(mdir "/memory.max")
        cpu = keyed(cdir "/cpu.stat", "usage_usec")
        swap = first(mdir "/memory.swap.current")
    } else {
        usage = first(mdir "/memory.usage_in_bytes")
        if (usage == "-") { out = out "X " key "\n"; return }
        v1stat(mdir "/memory.stat")
        inactive = st_inactive
        limit = st_limit
        cpu = first(cdir "/cpuacct.usage")
        swap = first(mdir "/memory.memsw.usage_in_bytes")
    }
    out = out "C " key " " usage " " inactive " " limit " " cpu " " swap "\n"
}

function processes(key, mdir,    path, pid, status, line, name, rss, n, f, count, nspid, anon) {
    path = mdir "/cgroup.procs"
    count = 0
    # Bounded: a fork bomb in a container must not turn every 5th frame into megabytes.
    while (count < 256 && (getline pid < path) > 0) {
        status = "/proc/" pid "/status"
        name = ""; rss = ""; nspid = ""; anon = "-"
        while ((getline line < status) > 0) {
            if (rss != "") {
                # The line after VmRSS: RssAnon (kernels >= 4.5), the heap a leak grows.
                if (substr(line, 1, 8) == "RssAnon:") { n = split(line, f, " "); anon = f[2] }
                break
            }
            if (substr(line, 1, 5) == "Name:") {
                name = line
                sub(/^Name:[ \t]*/, "", name)
            } else if (substr(line, 1, 6) == "NSpid:") {
                n = split(line, f, " ")
                nspid = (n >= 3) ? f[n] : ""
            } else if (substr(line, 1, 6) == "VmRSS:") {
                n = split(line, f, " ")
                rss = f[2]
            }
        }
        close(status)
        if (rss != "") {
            out = out "P " key " " pid " " rss " " name "\n"; count++
            # The pid the container sees (its access log's %(p)s) and the anonymous RSS.
            if (nspid == "") nspid = pid
            if (nspid != pid || anon != "-") out = out "N " key " " pid " " nspid " " anon "\n"
        }
    }
    close(path)
}

# One container's OOM counters: v2 memory.events, v1 memory.oom_control ("-" where absent).
function ooms(key, mdir,    path, line, n, f, kills, oom, want) {
    kills = "-"; oom = "-"
    if (mode == "v2") { path = mdir "/memory.events"; want = "oom" }
    else { path = mdir "/memory.oom_control"; want = "under_oom" }
    while ((getline line < path) > 0) {
        n = split(line, f, " ")
        if (f[1] == "oom_kill") kills = f[2]
        else if (f[1] == want) oom = f[2]
    }
    close(path)
    if (kills != "" && kills != "-") out = out "O " key " " kills " " oom "\n"
}

# v2 only: one container's memory.peak and memory.pressure some avg10 ("-" where absent).
function v2facts(key, mdir,    path, line, n, f, peak, some) {
    peak = first(mdir "/memory.peak")
    some = "-"
    path = mdir "/memory.pressure"
    while ((getline line < path) > 0) {
        n = split(line, f, " ")
        if (f[1] == "some") { sub(/^avg10=/, "", f[2]); some = f[2]; break }
    }
    close(path)
    if (peak != "-" || some != "-") out = out "Q " key " " peak " " some "\n"
}

function frame(    i, up, v) {
    ticks++
    up = first("/proc/uptime")
    out = "T " ticks " " up " " mode "\n"
    meminfo()
    pressure()
    for (i = 0; i < count; i++) container(keys[i], mdirs[i], cdirs[i])
    # Every 5th tick, and on the first after a "set": a new container shows its workers now.
    if (ticks % 5 == 1 || fresh) {
        fresh = 0
        for (i = 0; i < count; i++) processes(keys[i], mdirs[i])
        if (mode == "v2") for (i = 0; i < count; i++) v2facts(keys[i], mdirs[i])
    }
    # The OOM counters every tick: where the kernel log is closed (dmesg_restrict=1) they are
    # how a kill reaches the screen, and every 5th tick put it there up to 5 s late (the lab
    # server measured 2-5 s; a kill must show within 2 s). A few small files a second.
    for (i = 0; i < count; i++) ooms(keys[i], mdirs[i])
    v = keyed("/proc/vmstat", "oom_kill")
    if (v != "-") out = out "V " v "\n"
    printf "%s", out "E\n"
    out = ""
    fflush()
}

BEGIN { count = 0; ticks = 0; if (mode == "") mode = "v1" }

$1 == "set" {
    count = 0
    fresh = 1
    for (i = 2; i + 2 <= NF; i += 3) {
        keys[count] = $i; mdirs[count] = $(i + 1); cdirs[count] = $(i + 2); count++
    }
    next
}
$1 == "tick" { frame(); next }
$1 == "quit" { exit 0 }
