# diesel-gdb.py: libdiesel's green threads in gdb, for a live process
# (gdb -p PID) or a core file (gcore, or a crash), when no console can
# answer.  Go's runtime-gdb.py and CPython's python-gdb.py are the models.
#
#   (gdb) source tools/diesel-gdb.py         from the source tree
#   (gdb) info green-threads                 every loop's green threads
#   (gdb) green-thread ID bt                 a green thread's backtrace
#   (gdb) green-thread LOOP.ID bt            ... of loop LOOP (as listed)
#
# `make install` puts this file in $(PREFIX)/share/libdiesel: a line
#   source /usr/local/share/libdiesel/diesel-gdb.py
# in ~/.gdbinit makes the commands there in every session (they say so
# when the program has no libdiesel).  See libdiesel(3), "Three ways in".
#
# It reads no DWARF type of the library: the library describes its own
# layout in the root symbol diesel_debug_root (lib/debug.c draws it), with
# a magic and a version that are checked here.  Only the symbol table is
# needed, so a build without -g works too.
#
# A parked green thread's backtrace is unwound from its saved registers by
# a Python unwinder: while the command runs, the innermost frame of the
# selected OS thread is given the green thread's registers as its
# caller's, and gdb unwinds on from there with its usual means (CFI, debug
# info).  Unlike setting $sp and $pc, this writes nothing, so it works on
# a core file as on a live process, and leaves a live process as it was.

import struct

import gdb
import gdb.unwinder

LAYOUT_VERSION = 3
MAGIC = b"diesel-debug-root"
MAX_LOOPS = 1024           # bounds on every walk: memory may be torn
MAX_FRAMES = 128


class DieselError(gdb.GdbError):
    pass


def _mem(addr, n):
    try:
        return gdb.selected_inferior().read_memory(addr, n).tobytes()
    except gdb.MemoryError:
        raise DieselError("cannot read %d bytes at 0x%x (not in the core "
                          "file, or not mapped)" % (n, addr))


def _esc(raw):
    """Text from the process, made safe for the terminal: bytes outside
    printable ASCII (and backslash) as \\xHH, as the console does."""
    out = []
    for b in raw:
        if 0x20 <= b < 0x7f and b != 0x5c:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


class Root(object):
    """diesel_debug_root, decoded (lib/debug.c, version 3)."""

    U32_FIELDS = (
        "n_states",
        "loop_debug_next", "loop_debug_lwp", "loop_tasks", "loop_tasks_cap",
        "loop_now", "loop_ntasks",
        "slot_size", "slot_t",
        "task_id", "task_name", "name_size", "task_state", "task_switches",
        "task_timer_index", "task_ctx", "task_ctx_uc", "task_stack_lo",
        "task_stack_hi", "task_where", "task_spawn_caller",
        "task_spawned_at",
        "wait_kind", "wait_fd", "wait_events", "wait_since",
        "wait_deadline", "wait_target", "wait_what", "wait_object",
        "wait_sleep", "wait_fd_kind", "wait_join", "wait_other",
        "ev_read", "ev_write",
    )
    PTR_FIELDS = ("loops", "switch_fast", "asm_regs", "uc_regs",
                  "state_names")

    def __init__(self):
        self.addr = self._find()
        head = _mem(self.addr, 40)
        if head[:len(MAGIC)] != MAGIC:
            raise DieselError(
                "diesel_debug_root at 0x%x does not hold libdiesel's magic: "
                "not libdiesel's layout, or its memory is not in this core "
                "file" % self.addr)
        order = struct.unpack_from("<I", head, 28)[0]
        if order == 0x01020304:
            self.e = "<"
        elif order == 0x04030201:
            self.e = ">"
        else:
            raise DieselError("diesel_debug_root: unknown byte order")
        version, _, size, self.ptr = struct.unpack_from(self.e + "4I",
                                                        head, 24)
        if version != LAYOUT_VERSION:
            raise DieselError(
                "diesel_debug_root has layout version %d; this "
                "diesel-gdb.py reads version %d: source the diesel-gdb.py "
                "of the libdiesel the program was built with"
                % (version, LAYOUT_VERSION))
        if self.ptr != 8:
            raise DieselError("diesel-gdb.py reads 64-bit programs only "
                              "(this one has %d-byte pointers)" % self.ptr)
        raw = _mem(self.addr, size)
        off = 40
        for name in self.PTR_FIELDS:
            setattr(self, name, struct.unpack_from(self.e + "Q", raw, off)[0])
            off += 8
        for name in self.U32_FIELDS:
            setattr(self, name, struct.unpack_from(self.e + "I", raw, off)[0])
            off += 4
        self.states = [self.cstr(self.p(self.state_names + 8 * i), 32)
                       for i in range(self.n_states)]

    @staticmethod
    def _find():
        try:
            v = gdb.parse_and_eval("&diesel_debug_root")
        except gdb.error:
            raise DieselError(
                "no libdiesel here: the program has no symbol "
                "diesel_debug_root (not linked with libdiesel's loop, or "
                "stripped of its symbol table)")
        return int(v.cast(gdb.lookup_type("unsigned long")))

    # Reading the process's memory.
    def u8(self, a):
        return _mem(a, 1)[0]

    def i32(self, a):
        return struct.unpack(self.e + "i", _mem(a, 4))[0]

    def i64(self, a):
        return struct.unpack(self.e + "q", _mem(a, 8))[0]

    def u64(self, a):
        return struct.unpack(self.e + "Q", _mem(a, 8))[0]

    p = u64

    def cstr(self, a, n):
        if a == 0:
            return None
        try:
            raw = _mem(a, n)
        except DieselError:
            return "<unreadable string at 0x%x>" % a
        return _esc(raw.split(b"\0", 1)[0])

    def regs_table(self, a):
        """A struct diesel__debug_regs: ([(gdb register name, offset)],
        indirect)."""
        if a == 0:
            return [], 0
        n, indirect = struct.unpack(self.e + "II", _mem(a, 8))
        out = []
        for i in range(min(n, 16)):
            name = self.cstr(self.p(a + 8 + 16 * i), 16)
            out.append((name, self.u64(a + 16 + 16 * i)))
        return out, indirect


class Task(object):
    def __init__(self, root, loop, addr):
        r = root
        self.root, self.loop, self.addr = root, loop, addr
        self.id = r.i64(addr + r.task_id)
        self.name = r.cstr(addr + r.task_name, r.name_size)
        st = r.i32(addr + r.task_state)
        self.state = r.states[st] if 0 <= st < len(r.states) else "?%d" % st
        self.switches = r.u64(addr + r.task_switches)
        self.where = r.cstr(r.p(addr + r.task_where), 256)
        self.caller = r.p(addr + r.task_spawn_caller)

    def waits_on(self):
        r, a = self.root, self.addr
        if self.state not in ("waiting", "sleeping"):
            return "-"
        kind = r.i32(a + r.wait_kind)
        if kind == r.wait_sleep:
            s = "sleep"
        elif kind == r.wait_fd_kind:
            ev = r.i32(a + r.wait_events)
            s = "fd %d %s" % (r.i32(a + r.wait_fd), {
                r.ev_read: "read", r.ev_write: "write"}.get(ev, "read/write"))
        elif kind == r.wait_join:
            target = r.i64(a + r.wait_target)
            s = "join %d" % target
            t = self.loop.find(target)
            if t is not None:
                s += " (%s)" % t.name
        elif kind == r.wait_other:
            s = r.cstr(r.p(a + r.wait_what), 64) or "other"
            obj = r.cstr(r.p(a + r.wait_object), 64)
            if obj:
                s += " '%s'" % obj
        else:
            s = "-"
        # The deadline is the park's only while its timer is in the heap
        # (a park without one leaves an earlier park's there).
        deadline = r.i64(a + r.wait_deadline)
        if r.u64(a + r.task_timer_index) != 0xffffffffffffffff and \
                deadline >= 0:
            s += ", timer %.3fs" % (max(deadline - self.loop.now, 0) / 1e9)
        return s

    def spawned_at(self):
        if self.where:
            return self.where
        if self.caller:
            return _where_pc(self.caller - 1)
        return "-"

    def registers(self):
        """The saved registers as {gdb name: value}."""
        r, a = self.root, self.addr
        fast = r.switch_fast != 0 and r.i32(r.switch_fast) != 0
        if fast and r.asm_regs:
            base = a + r.task_ctx
            table, indirect = r.regs_table(r.asm_regs)
        else:
            base = r.p(a + r.task_ctx_uc)
            table, indirect = r.regs_table(r.uc_regs)
            if not table:
                raise DieselError("this system's ucontext layout is not "
                                  "known to libdiesel: no backtrace")
        if indirect:
            # The registers are on the stack, at the save area's first word.
            base = r.p(base)
        top = 1 << 63
        regs = dict((name, base + (off & ~top) if off & top else
                     r.u64(base + off)) for name, off in table)
        x1 = regs.pop("x1", None)
        if x1 is not None and "pc" in regs:
            # glibc's aarch64 swapcontext saves a pc inside itself that
            # resumes at x1 (see diesel__platform_uc_regs).
            if "swapcontext" in _where_pc(regs["pc"]):
                regs["pc"] = x1
        return regs


def _symbol(pc):
    """The symbol table's name for pc, or None."""
    try:
        out = gdb.execute("info symbol 0x%x" % pc, to_string=True)
    except gdb.error:
        return None
    if out.startswith("No symbol"):
        return None
    return out.split(" in section")[0].split(" + ")[0].strip()


def _where_pc(pc):
    """func (file:line) of a code address, as far as gdb knows it."""
    sal = gdb.find_pc_line(pc)
    name = None
    try:
        b = gdb.block_for_pc(pc)
        while b is not None and b.function is None:
            b = b.superblock
        if b is not None:
            name = b.function.print_name
    except RuntimeError:
        pass
    if name is None:
        name = _symbol(pc)
    if sal.symtab is not None:
        loc = "%s:%d" % (sal.symtab.filename, sal.line)
        return "%s (%s)" % (name, loc) if name else loc
    return name or "0x%x" % pc


class Loop(object):
    def __init__(self, root, addr, number):
        r = root
        self.root, self.addr, self.number = root, addr, number
        self.lwp = r.i64(addr + r.loop_debug_lwp)
        self.now = r.i64(addr + r.loop_now)
        self.ntasks = r.u64(addr + r.loop_ntasks)
        self.thread = None
        for th in gdb.selected_inferior().threads():
            if th.ptid[1] == self.lwp:
                self.thread = th
        self._tasks = None

    def tasks(self):
        if self._tasks is None:
            r = self.root
            slots = r.p(self.addr + r.loop_tasks)
            cap = r.u64(self.addr + r.loop_tasks_cap)
            out = []
            if slots and cap:
                raw = _mem(slots, cap * r.slot_size)
                for i in range(cap):
                    t = struct.unpack_from(r.e + "Q", raw,
                                           i * r.slot_size + r.slot_t)[0]
                    if t:
                        out.append(self._task(t))
            out.sort(key=lambda t: t.id)
            self._tasks = out
        return self._tasks

    def _task(self, addr):
        try:
            t = Task(self.root, self, addr)
        except DieselError:
            t = None
        if t is None or t.id <= 0:
            raise DieselError(
                "the green thread record at 0x%x is not in this core file "
                "(it reads as %s): gcore (gdb) drops a mapping it cannot "
                "read whole, and a stack with a Linux guard region "
                "(MADV_GUARD_INSTALL, Linux 6.13 and later) is one.  Start "
                "the service with DIESEL_STACK_GUARD=mprotect for gcore, "
                "or let the kernel dump the core (ulimit -c; kill -ABRT)"
                % (addr, "unreadable" if t is None else "zeros"))
        return t

    def find(self, id):
        for t in self.tasks():
            if t.id == id:
                return t
        return None

    def where(self):
        if self.thread is None:
            return "LWP %d (not a thread gdb knows)" % self.lwp
        return "thread %d (LWP %d)" % (self.thread.num, self.lwp)


def _loops(root):
    out = []
    a = root.p(root.loops)
    while a and len(out) < MAX_LOOPS:
        out.append(a)
        a = root.p(a + root.loop_debug_next)
    # Oldest first, numbered as listed.
    return [Loop(root, a, i + 1) for i, a in enumerate(reversed(out))]


def _table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        gdb.write(("  " + "  ".join(cells)).rstrip() + "\n")


class InfoGreenThreads(gdb.Command):
    """List libdiesel's green threads, every loop's: id, name, state,
what it waits on (timers and times as of the loop's last turn) and
where it was spawned.  The running one is marked with *.
Usage: info green-threads"""

    def __init__(self):
        super(InfoGreenThreads, self).__init__("info green-threads",
                                               gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise DieselError("usage: info green-threads")
        root = Root()
        loops = _loops(root)
        if not loops:
            gdb.write("no libdiesel loop is running in this process\n")
            return
        for lp in loops:
            tasks = lp.tasks()
            gdb.write("loop %d on %s: %d green thread%s\n" % (
                lp.number, lp.where(), len(tasks),
                "" if len(tasks) == 1 else "s"))
            rows = [["", "Id", "Name", "State", "Waits on", "Spawned at"]]
            for t in tasks:
                rows.append(["*" if t.state == "running" else "",
                             str(t.id), t.name, t.state, t.waits_on(),
                             t.spawned_at()])
            _table(rows)


def _int(v):
    """A register's value (a pointer too) as an unsigned int."""
    return int(v.cast(gdb.lookup_type("unsigned long")))


class GreenUnwinder(gdb.unwinder.Unwinder):
    """Gives the innermost frame (the anchor) a green thread's saved
    registers as its caller's; off unless a backtrace is being taken."""

    class _Id(object):
        def __init__(self, sp, pc):
            self.sp, self.pc = sp, pc

    def __init__(self):
        super(GreenUnwinder, self).__init__("libdiesel green threads")
        self.anchor = None
        self.regs = None

    def __call__(self, pf):
        if self.anchor is None:
            return None
        sp_name, pc_name = self.anchor[2], self.anchor[3]
        if (_int(pf.read_register(sp_name)) != self.anchor[0] or
                _int(pf.read_register(pc_name)) != self.anchor[1]):
            return None
        # Its id's stack address is the lowest there is: gdb stops at a
        # caller "inner" to (below) its callee, and the green thread's
        # stack may lie anywhere, below the OS thread's too.
        sp = pf.read_register(sp_name)
        ui = pf.create_unwind_info(self._Id(
            gdb.Value(16).cast(sp.type),
            pf.read_register(pc_name)))
        for name, val in self.regs.items():
            ui.add_saved_register(
                name, gdb.Value(val).cast(pf.read_register(name).type))
        return ui


_unwinder = GreenUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def _frame_line(level, f):
    name = f.name() or "??"
    args = []
    try:
        block = f.block()
        for sym in block:
            if sym.is_argument:
                try:
                    v = str(f.read_var(sym, block))
                except (gdb.error, RuntimeError):
                    v = "<optimized out>"
                args.append("%s=%s" % (sym.print_name, v[:80]))
    except RuntimeError:
        pass
    s = "#%-3d" % level
    if f.type() != gdb.INLINE_FRAME:
        s += "0x%016x in " % f.pc()
    s += "%s (%s)" % (name, ", ".join(args))
    sal = f.find_sal()
    if sal.symtab is not None:
        s += " at %s:%d" % (sal.symtab.filename, sal.line)
    else:
        lib = gdb.solib_name(f.pc())
        if lib:
            s += " from %s" % lib
    return s


def _print_frames(f):
    level = 0
    while f is not None and level < MAX_FRAMES:
        if level > 0 and f.pc() == 0:
            return   # below the first function: makecontext's end
        gdb.write(_frame_line(level, f) + "\n")
        level += 1
        try:
            older = f.older()
        except gdb.error as e:
            gdb.write("Backtrace stopped: %s\n" % e)
            return
        if older is None:
            why = f.unwind_stop_reason()
            if why not in (gdb.FRAME_UNWIND_NO_REASON,
                           gdb.FRAME_UNWIND_OUTERMOST):
                gdb.write("Backtrace stopped: %s\n"
                          % gdb.frame_stop_reason_string(why))
        f = older
    if f is not None:
        gdb.write("(more frames follow)\n")


def _arch_regs():
    arch = gdb.selected_frame().architecture().name()
    if "aarch64" in arch:
        return "sp", "pc"
    if "x86-64" in arch or "x86_64" in arch:
        return "rsp", "rip"
    raise DieselError("diesel-gdb.py unwinds x86-64 and aarch64 only, not "
                      "%s" % arch)


def _parked_bt(t):
    regs = t.registers()
    sp_name, pc_name = _arch_regs()
    if sp_name not in regs or pc_name not in regs:
        raise DieselError("the saved registers lack %s or %s"
                          % (sp_name, pc_name))
    newest = gdb.newest_frame()
    anchor_sp = _int(newest.read_register(sp_name))
    anchor_pc = _int(newest.read_register(pc_name))
    _unwinder.anchor = (anchor_sp, anchor_pc, sp_name, pc_name)
    _unwinder.regs = regs
    gdb.invalidate_cached_frames()
    try:
        f = gdb.newest_frame()
        # Past the anchor's frames (inlined ones share its sp and pc) to
        # the first with the green thread's registers.
        n = 0
        while f is not None and n < MAX_FRAMES:
            if (f.pc() == regs[pc_name] and
                    _int(f.read_register(sp_name)) == regs[sp_name]):
                break
            f = f.older()
            n += 1
        if f is None or n == MAX_FRAMES:
            raise DieselError("gdb did not unwind to the green thread's "
                              "saved registers (pc 0x%x, sp 0x%x)"
                              % (regs[pc_name], regs[sp_name]))
        _print_frames(f)
    finally:
        _unwinder.anchor = None
        _unwinder.regs = None
        gdb.invalidate_cached_frames()


def _running_bt(t):
    lp = t.loop
    if lp.thread is None:
        raise DieselError("green thread %d runs on LWP %d, which gdb does "
                          "not list as a thread" % (t.id, lp.lwp))
    gdb.write("(running on %s: that thread's stack)\n" % lp.where())
    old = gdb.selected_thread()
    lp.thread.switch()
    try:
        _print_frames(gdb.newest_frame())
    finally:
        if old is not None and old.is_valid():
            old.switch()


class GreenThread(gdb.Command):
    """Act on one of libdiesel's green threads.
Usage: green-thread ID bt        the backtrace of green thread ID
       green-thread LOOP.ID bt   ... in loop LOOP (as info green-threads
                                 numbers them), when several loops run
A parked green thread is unwound from the registers it saved when it
switched out; a running one shows its OS thread's stack."""

    def __init__(self):
        super(GreenThread, self).__init__("green-thread", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split()
        if len(words) != 2 or words[1] not in ("bt", "backtrace"):
            raise DieselError("usage: green-thread ID bt  (or LOOP.ID bt)")
        loop_no = None
        spec = words[0]
        try:
            if "." in spec:
                loop_no, id = (int(x) for x in spec.split(".", 1))
            else:
                id = int(spec)
        except ValueError:
            raise DieselError("green-thread: '%s' is not an id (ID or "
                              "LOOP.ID, numbers)" % _esc(spec.encode()))
        root = Root()
        loops = _loops(root)
        if loop_no is not None:
            loops = [lp for lp in loops if lp.number == loop_no]
            if not loops:
                raise DieselError("no loop %d (info green-threads lists "
                                  "them)" % loop_no)
        found = [t for t in (lp.find(id) for lp in loops) if t is not None]
        if not found:
            raise DieselError("no green thread %d (info green-threads "
                              "lists them)" % id)
        if len(found) > 1:
            raise DieselError(
                "green thread %d is in loops %s: say which, as "
                "green-thread LOOP.%d bt" % (id, ", ".join(
                    str(t.loop.number) for t in found), id))
        t = found[0]
        gdb.write("green thread %d '%s' (%s), loop %d:\n"
                  % (t.id, t.name, t.state, t.loop.number))
        if t.state == "running":
            _running_bt(t)
        elif t.switches == 0:
            gdb.write("(it has not run yet: no frames)\n")
        else:
            _parked_bt(t)


InfoGreenThreads()
GreenThread()
