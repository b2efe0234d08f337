/**
 * A server-wide bound on the handlers that run in a fiber at once (getty's task pool, netty's
 * handler executor group). A handler that answers synchronously never takes a slot. A message whose
 * handler waits for a slot keeps its connection paused, so a connection stops reading while it waits.
 */
export class TaskPool {
  /** Slots taken now. */
  running = 0
  /** The most slots ever taken at once. */
  peak = 0
  private readonly waiting: Array<{ start: (() => void) | undefined }> = []
  private head = 0

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`task pool size must be >= 1, got ${size}`)
  }

  /** Takes a slot if one is free and nobody waits for one. */
  tryAcquire(): boolean {
    this.prune()
    if (this.running >= this.size || this.head < this.waiting.length) return false
    this.take()
    return true
  }

  /** Calls `start` with a slot taken, first come first served. Returns a function that gives up the wait. */
  wait(start: () => void): () => void {
    const entry: { start: (() => void) | undefined } = { start }
    this.waiting.push(entry)
    this.drain()
    return () => {
      entry.start = undefined
    }
  }

  /** Gives a slot back; the next waiter (if any) takes it. */
  release(): void {
    this.running--
    this.drain()
  }

  private drain(): void {
    while (this.running < this.size) {
      this.prune()
      if (this.head >= this.waiting.length) break
      const start = this.waiting[this.head++]!.start!
      this.take()
      start()
    }
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head)
      this.head = 0
    }
  }

  /** Skips the waits given up. */
  private prune(): void {
    while (this.head < this.waiting.length && this.waiting[this.head]!.start === undefined) this.head++
  }

  private take(): void {
    this.running++
    if (this.running > this.peak) this.peak = this.running
  }
}
