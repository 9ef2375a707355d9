import { readdirSync, readFileSync } from 'node:fs';

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  command: string;
}

/** /proc/<pid>/stat, or undefined when the process is gone. The command name may hold spaces and parentheses. */
function stat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const [state, ppid] = text.slice(close + 2).split(' ');
  return { pid, ppid: Number(ppid), state: state!, command: text.slice(text.indexOf('(') + 1, close) };
}

/** `root` and every process below it, now (Linux /proc). */
export function processTree(root: number): ProcStat[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => stat(Number(name)))
    .filter((p): p is ProcStat => p !== undefined);
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((p) => p.ppid === tree[i]!.pid));
  return tree;
}

/** Those of `pids` still running (a zombie, exited but not yet reaped, counts as gone). */
export function survivors(processes: ProcStat[]): ProcStat[] {
  return processes.filter((p) => {
    const now = stat(p.pid);
    return now !== undefined && now.state !== 'Z' && now.command === p.command;
  });
}
