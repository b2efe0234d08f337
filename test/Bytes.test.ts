// Bytes.copy: copies that nothing else writes to, small ones carved out of a shared slab on V8.
import { describe, expect, it } from "@effect/vitest"
import { Bytes } from "../src/index.ts"

const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

const pattern = (size: number, seed: number): Uint8Array => {
  const out = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

describe("Bytes.copy", () => {
  it("copies every size byte for byte, and the copy does not change with its source", () => {
    for (const size of [0, 1, 3, 63, 64, 65, 511, 512, 513, 4096, 20_000]) {
      const source = pattern(size, size + 1)
      const expected = source.slice()
      const copy = Bytes.copy(source)
      expect(copy.length).toBe(size)
      expect(Array.from(copy)).toEqual(Array.from(expected))
      source.fill(0xee)
      expect(Array.from(copy)).toEqual(Array.from(expected))
    }
  })

  it("copies made one after the other never overlap, across slabs", () => {
    // 300 copies of 300 bytes: more than 5 slabs of 16 KiB.
    const copies = Array.from({ length: 300 }, (_, i) => Bytes.copy(pattern(300, i)))
    copies.forEach((copy, i) => expect(Array.from(copy)).toEqual(Array.from(pattern(300, i))))
    // Writing into one copy leaves every other as it was.
    copies[150]!.fill(0)
    copies.forEach((copy, i) => {
      if (i !== 150) expect(Array.from(copy)).toEqual(Array.from(pattern(300, i)))
    })
  })

  it("small copies share a slab on V8 (each with its byteOffset), large ones have an ArrayBuffer of their own", () => {
    // Three in a row: a slab holds 163 of them, so at most one slab boundary falls between them.
    const small = [1, 2, 3].map((seed) => Bytes.copy(pattern(100, seed)))
    const large = Bytes.copy(pattern(513, 4))
    expect(large.byteOffset).toBe(0)
    expect(large.buffer.byteLength).toBe(513)
    const shared = [0, 1].filter((i) => small[i]!.buffer === small[i + 1]!.buffer)
    if (onBun) {
      expect(shared).toEqual([])
    } else {
      expect(shared.length).toBeGreaterThanOrEqual(1)
      for (const i of shared) expect(small[i + 1]!.byteOffset).toBe(small[i]!.byteOffset + 100)
      small.forEach((copy, i) =>
        expect(Array.from(new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength))).toEqual(
          Array.from(pattern(100, i + 1))
        )
      )
    }
  })
})
