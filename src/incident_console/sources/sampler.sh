# incident-console stats sampler, POSIX sh fallback for hosts without awk.
# Run as: sh -c "$SCRIPT" sampler MODE   (MODE: v1 or v2). Same protocol and frame as sampler.awk.
# Only builtins: files are read with `read` redirected from them; no process per tick.
# Unreadable files yield "-"; a redirection error on a builtin never ends the shell.

set -f  # the folder list is split on spaces: never glob it
mode=${1:-v1}
list=
ticks=0
fresh=0

first() {
    r=-
    read -r r _rest 2>/dev/null < "$1" || :
    [ -n "$r" ] || r=-
}

keyed() {
    r=-
    while read -r _k _v _rest; do
        if [ "$_k" = "$2" ]; then r=$_v; break; fi
    done 2>/dev/null < "$1"
}

# v1 memory.stat, read once for the inactive file pages and the limit in effect (one file
# fewer per container than memory.limit_in_bytes; the same value as awk's).
v1stat() {
    _i=- _l=-
    while read -r _k _v _rest; do
        case $_k in
            hierarchical_memory_limit) _l=$_v ;;
            total_inactive_file) _i=$_v; break ;;
        esac
    done 2>/dev/null < "$1"
}

meminfo() {
    _t=- _a=- _st=- _sf=-
    while read -r _k _v _rest; do
        case $_k in
            MemTotal:) _t=$_v ;;
            MemAvailable:) _a=$_v ;;
            SwapTotal:) _st=$_v ;;
            SwapFree:) _sf=$_v; break ;;
        esac
    done 2>/dev/null < /proc/meminfo
    printf 'M %s %s %s %s\n' "$_t" "$_a" "$_st" "$_sf"
}

pressure() {
    [ -r /proc/pressure/memory ] || return 0
    _some=- _full=-
    while read -r _k _v _rest; do
        case $_k in
            some) _some=${_v#avg10=} ;;
            full) _full=${_v#avg10=} ;;
        esac
    done 2>/dev/null < /proc/pressure/memory
    printf 'S %s %s\n' "$_some" "$_full"
}

container() {
    # $1 key, $2 memory folder, $3 cpu folder
    if [ "$mode" = v2 ]; then
        first "$2/memory.current"; _u=$r
        if [ "$_u" = - ]; then printf 'X %s\n' "$1"; return 0; fi
        keyed "$2/memory.stat" inactive_file; _i=$r
        first "$2/memory.max"; _l=$r
        keyed "$3/cpu.stat" usage_usec; _c=$r
        first "$2/memory.swap.current"; _s=$r
    else
        first "$2/memory.usage_in_bytes"; _u=$r
        if [ "$_u" = - ]; then printf 'X %s\n' "$1"; return 0; fi
        v1stat "$2/memory.stat"
        first "$3/cpuacct.usage"; _c=$r
        first "$2/memory.memsw.usage_in_bytes"; _s=$r
    fi
    printf 'C %s %s %s %s %s %s\n' "$1" "$_u" "$_i" "$_l" "$_c" "$_s"
}

processes() {
    _n=0
    while [ "$_n" -lt 256 ] && read -r _pid; do
        _name= _rss= _ns= _anon=-
        while read -r _k _v; do
            if [ -n "$_rss" ]; then
                case $_k in RssAnon:) _anon=${_v%% *} ;; esac
                break
            fi
            case $_k in
                Name:) _name=$_v ;;
                NSpid:) _ns=${_v##*[	 ]} ;;
                VmRSS:) _rss=${_v%% *} ;;
            esac
        done 2>/dev/null < "/proc/$_pid/status"
        if [ -n "$_rss" ]; then
            printf 'P %s %s %s %s\n' "$1" "$_pid" "$_rss" "$_name"
            [ -n "$_ns" ] || _ns=$_pid
            if [ "$_ns" != "$_pid" ] || [ "$_anon" != - ]; then
                printf 'N %s %s %s %s\n' "$1" "$_pid" "$_ns" "$_anon"
            fi
            _n=$((_n + 1))
        fi
    done 2>/dev/null < "$2/cgroup.procs"
}

# One container's OOM counters (the O line of sampler.awk): $1 key, $2 memory folder.
ooms() {
    _k=- _o=-
    if [ "$mode" = v2 ]; then _f=$2/memory.events _w=oom; else _f=$2/memory.oom_control _w=under_oom; fi
    while read -r _n _v _rest; do
        case $_n in
            oom_kill) _k=$_v ;;
            "$_w") _o=$_v ;;
        esac
    done 2>/dev/null < "$_f"
    [ "$_k" = - ] || printf 'O %s %s %s\n' "$1" "$_k" "$_o"
}

# v2 only: memory.peak and memory.pressure some avg10 (the Q line of sampler.awk).
v2facts() {
    first "$2/memory.peak"; _p=$r
    _s=-
    while read -r _n _v _rest; do
        if [ "$_n" = some ]; then _s=${_v#avg10=}; break; fi
    done 2>/dev/null < "$2/memory.pressure"
    if [ "$_p" != - ] || [ "$_s" != - ]; then printf 'Q %s %s %s\n' "$1" "$_p" "$_s"; fi
}

frame() {
    ticks=$((ticks + 1))
    first /proc/uptime
    printf 'T %s %s %s\n' "$ticks" "$r" "$mode"
    meminfo
    pressure
    set -- $list
    while [ $# -ge 3 ]; do
        container "$1" "$2" "$3"
        shift 3
    done
    if [ $((ticks % 5)) -eq 1 ] || [ "$fresh" = 1 ]; then
        fresh=0
        set -- $list
        while [ $# -ge 3 ]; do
            processes "$1" "$2"
            ooms "$1" "$2"
            shift 3
        done
        if [ "$mode" = v2 ]; then
            set -- $list
            while [ $# -ge 3 ]; do
                v2facts "$1" "$2"
                shift 3
            done
        fi
        keyed /proc/vmstat oom_kill
        [ "$r" = - ] || printf 'V %s\n' "$r"
    fi
    printf 'E\n'
}

while read -r _cmd _args; do
    case $_cmd in
        set) list=$_args; fresh=1 ;;
        tick) frame ;;
        quit) exit 0 ;;
    esac
done
