# drgn walking what the benchmarks compare against: every CPU's current stack, every D task's
# stack, the log. Usage: python3 scripts/drgn-walk.py VMLINUX DUMP (prints the frame + record count).
import sys, drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import cpu_curr
from drgn.helpers.linux.printk import get_printk_records
prog = drgn.Program()
prog.set_core_dump(sys.argv[2])
prog.load_debug_info([sys.argv[1]], default=False, main=True)
n = 0
for cpu in range(4):
    try:
        n += len(prog.stack_trace(cpu_curr(prog, cpu)))
    except Exception:
        pass
for t in for_each_task(prog):
    if t.__state.value_() & 2:
        n += len(prog.stack_trace(t))
n += len(get_printk_records(prog))
print(n)
