// The declarations of threads.js (the npm package's "qnn/threads").
import type * as qnn from "./qnn.js";

export interface Loaded {
  /** The module, initialized: what `import ... from "qnn"` gives (the threaded build's, when threads > 1). */
  module: typeof qnn;
  /** How many threads the CPU backend's loops use. */
  threads: number;
  /** Which build, and why, in words. */
  note: string;
  /** The pool's Web Workers (none single-threaded). */
  workers: Worker[];
}

/**
 * Loads qnn with every core: the threaded build in a cross-origin isolated page (COOP/COEP
 * headers), else the single-threaded one. `threads`: how many in all (default: every core).
 */
export default function load(options?: { threads?: number; single?: string | URL; threaded?: string | URL }): Promise<Loaded>;
