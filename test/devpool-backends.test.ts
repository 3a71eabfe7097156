// Backend selection and the GPU backends without a GPU: the library-absent and no-device paths, and the whole
// HIP and CUDA code paths run against a stand-in runtime (test/fixtures/fake_gpu.c, built here with gcc) whose
// "device memory" is host memory and which logs every call. Also SHA-256 unavailable (no libcrypto). Each case
// runs in a child process: a runtime library is loaded once per process, and these change the environment.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aether, ROOT, runCmd, runSnippet } from "./helpers/run.ts";

const dir = mkdtempSync(join(tmpdir(), "aether-backends-"));
const FAKE = join(dir, "libfakegpu.so");
const ABSENT = join(dir, "no-such-runtime.so");

beforeAll(() => {
  const r = runCmd(["gcc", "-shared", "-fPIC", "-O1", "-o", FAKE, join(ROOT, "test", "fixtures", "fake_gpu.c")]);
  if (r.code !== 0) throw new Error(`cannot build the fake GPU runtime: ${r.stderr}`);
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
});

const PRELUDE = `
import { DevicePools, probeDevice, deviceBackends, cryptoStatus } from "aether-memory";
import { AetherError } from "${join(ROOT, "cli", "native", "ffi.ts")}";
const code = (fn) => { try { fn(); return "ok"; } catch (e) { if (e instanceof AetherError) return e.code; throw e; } };
const out = (v) => console.log(JSON.stringify(v, (_, x) => (typeof x === "bigint" ? String(x) : x)));
`;

function child(code: string, env: Record<string, string | undefined> = {}): any {
  const r = runSnippet(PRELUDE + code, { env: { AETHER_DEVICE: undefined, AETHER_AUDIT_LOG: undefined, ...env } });
  if (r.code !== 0) throw new Error(`child failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

describe("selection and absent runtimes", () => {
  test("an absent runtime library is BACKEND_UNAVAILABLE, named, and never a silent fallback", () => {
    const r = child(
      `const p = probeDevice("hip");
       let msg = ""; let c = "";
       try { DevicePools.create({ backend: "hip" }); } catch (e) { c = e.code; msg = e.message; }
       let envCode = ""; try { DevicePools.create(); } catch (e) { envCode = e.code; }
       out({ p, c, msg, envCode, cuda: probeDevice("cuda").status });`,
      { AETHER_HIP_LIB: ABSENT, AETHER_CUDA_LIB: ABSENT, AETHER_DEVICE: "hip" },
    );
    expect(r.p).toMatchObject({ backend: "hip", available: false, status: "AETHER_ERR_BACKEND_UNAVAILABLE", devices: 0 });
    expect(r.p.message).toContain(ABSENT);
    expect(r.c).toBe("AETHER_ERR_BACKEND_UNAVAILABLE");
    expect(r.msg).toContain("backend hip requested but unavailable");
    expect(r.msg).toContain("AETHER_DEVICE=host");
    expect(r.envCode).toBe("AETHER_ERR_BACKEND_UNAVAILABLE"); // AETHER_DEVICE=hip, absent: an error
    expect(r.cuda).toBe("AETHER_ERR_BACKEND_UNAVAILABLE");
  });

  test("a runtime with no device is NO_DEVICE; auto then picks the host", () => {
    const r = child(
      `const p = probeDevice("cuda");
       let c = ""; try { DevicePools.create({ backend: "cuda" }); } catch (e) { c = e.code; }
       const auto = DevicePools.create({ backend: "auto" }); const b = auto.backend; auto.destroy();
       const def = DevicePools.create(); const d = def.backend; def.destroy();
       out({ p, c, b, d });`,
      { AETHER_CUDA_LIB: FAKE, AETHER_HIP_LIB: ABSENT, FAKE_GPU_DEVICES: "0" },
    );
    expect(r.p).toMatchObject({ available: false, status: "AETHER_ERR_NO_DEVICE", library: FAKE });
    expect(r.p.message).toContain("no GPU device (fake runtime)");
    expect(r.c).toBe("AETHER_ERR_NO_DEVICE");
    expect(r.b).toBe("host");
    expect(r.d).toBe("host"); // AETHER_DEVICE unset means auto
  });

  test("a library that is not a GPU runtime is refused", () => {
    const r = child(`out({ p: probeDevice("hip") });`, { AETHER_HIP_LIB: "libm.so.6" });
    expect(r.p.status).toBe("AETHER_ERR_BACKEND_UNAVAILABLE");
    expect(r.p.message).toContain("lacks hipGetDeviceCount");
  });

  test("bad AETHER_DEVICE values and device indexes are errors", () => {
    const r = child(
      `const a = code(() => DevicePools.create());
       const b = code(() => DevicePools.create({ backend: "host", device: 1 }));
       out({ a, b });`,
      { AETHER_DEVICE: "tpu" },
    );
    expect(r).toEqual({ a: "AETHER_ERR_INVALID_ARGUMENT", b: "AETHER_ERR_NO_DEVICE" });
  });

  test("whatever runtimes this machine has are probed coherently", () => {
    const r = child(`out(deviceBackends());`);
    expect(r.map((d: any) => d.backend)).toEqual(["host", "hip", "cuda"]);
    expect(r[0]).toMatchObject({ available: true, devices: 1 });
    for (const d of r.slice(1)) {
      if (d.available) expect(d.devices).toBeGreaterThan(0);
      else expect(["AETHER_ERR_BACKEND_UNAVAILABLE", "AETHER_ERR_NO_DEVICE"]).toContain(d.status);
      expect(d.message.length).toBeGreaterThan(10);
    }
  });
});

describe("GPU backends through a stand-in runtime", () => {
  for (const backend of ["hip", "cuda"] as const) {
    test(`${backend}: selected by AETHER_DEVICE, auto picks it when it has a device, names the device`, () => {
      const env = { AETHER_HIP_LIB: backend === "hip" ? FAKE : ABSENT, AETHER_CUDA_LIB: backend === "cuda" ? FAKE : ABSENT };
      const r = child(
        `const p = probeDevice("${backend}");
         const a = DevicePools.create({ backend: "auto" }); const auto = a.backend; a.destroy();
         const e = DevicePools.create(); const fromEnv = e.backend; e.destroy();
         out({ p, auto, fromEnv });`,
        { ...env, AETHER_DEVICE: backend },
      );
      expect(r.p).toMatchObject({ available: true, devices: 1, totalBytes: 16 * 2 ** 30 });
      expect(r.p.name).toBe(backend === "hip" ? "Fake Instinct 0" : "Fake Hopper 0");
      expect(r.auto).toBe(backend);
      expect(r.fromEnv).toBe(backend);
    });

    test(`${backend}: the pools work on it, fresh slabs are zeroed, and secret wipes run the four passes in order`, () => {
      const log = join(dir, `${backend}.log`);
      rmSync(log, { force: true });
      const r = child(
        `const p = DevicePools.create({ backend: "${backend}", verifyWipe: true, ignoreEnvAudit: true });
         const s = p.context("acme", "rust", "secret");
         const pub = p.context("globex", "julia", "public");
         // the fake runtime fills new memory with 0x5c: a pool must never show it
         const fresh = pub.alloc(100000); const z = pub.read(fresh, 0, 100000).every((b) => b === 0);
         const data = new Uint8Array(5000).map((_, i) => i & 0xff);
         const h = s.alloc(5000); s.write(h, 0, data);
         const same = s.read(h, 0, 5000).every((b, i) => b === (i & 0xff));
         const denied = code(() => pub.read(h, 0, 1));
         require("node:fs").appendFileSync("${log}", "-- free\\n");
         s.free(h);
         require("node:fs").appendFileSync("${log}", "-- end\\n");
         const stale = code(() => s.read(h, 0, 1));
         const again = s.alloc(5000); const wiped = s.read(again, 0, 5000).every((b) => b === 0);
         s.free(again); pub.free(fresh);
         const st = p.stats();
         p.destroy();
         out({ z, same, denied, stale, wiped, backend: "${backend}", wipedBytes: st.wipedBytes });`,
        { AETHER_HIP_LIB: FAKE, AETHER_CUDA_LIB: FAKE, FAKE_GPU_LOG: log },
      );
      expect(r).toMatchObject({ z: true, same: true, denied: "AETHER_ERR_ACCESS_DENIED", stale: "AETHER_ERR_STALE_HANDLE", wiped: true });
      const lines = readFileSync(log, "utf8").trim().split("\n");
      // Every slab the runtime handed over was zeroed right after the malloc.
      lines.forEach((l, i) => {
        if (l.startsWith("malloc ")) expect(lines[i + 1]).toBe(`memset 0 ${l.slice(7)}`);
      });
      const wipe = lines.slice(lines.indexOf("-- free") + 1, lines.indexOf("-- end"));
      expect(wipe).toEqual(["memset 0 5120", "memset 255 5120", "h2d 5120", "memset 0 5120", "d2h 5120"]);
      expect(r.wipedBytes).toBe(2 * 4 * 5120);
    });
  }

  test("a wipe that does not take is caught by read-back verification, audited, and the range retired", () => {
    const r = child(
      `const p = DevicePools.create({ backend: "hip", verifyWipe: true, ignoreEnvAudit: true });
       const c = p.context("acme", "rust", "confidential");
       const h = c.alloc(4096);
       const seq = p.auditSeq();
       const freed = code(() => c.free(h));
       const recs = p.audit(seq).map((x) => x.op + ":" + x.result);
       const stale = code(() => c.read(h, 0, 1));
       const st = c.stats();
       p.destroy();
       out({ freed, recs, stale, live: st.liveCount });`,
      { AETHER_HIP_LIB: FAKE, FAKE_GPU_BROKEN_MEMSET: "1" },
    );
    expect(r.freed).toBe("AETHER_ERR_WIPE_FAILED");
    expect(r.recs).toEqual(["wipe:AETHER_ERR_WIPE_FAILED", "free:AETHER_ERR_WIPE_FAILED"]);
    expect(r.stale).toBe("AETHER_ERR_STALE_HANDLE");
    expect(r.live).toBe(0);
  });

  test("without in-place growth a pool takes several slabs, and gives empty ones back beyond retain", () => {
    const r = child(
      `const p = DevicePools.create({ backend: "cuda", ignoreEnvAudit: true, retainBytes: 1 << 20 });
       const c = p.context("grow", "rust");
       const hs = []; for (let i = 0; i < 64; i++) hs.push(c.alloc(1 << 20));
       const full = c.stats();
       for (const h of hs) c.free(h);
       const empty = c.stats();
       p.destroy();
       out({ slabs: full.slabs, acquired: full.slabsAcquired, reserved: full.reservedBytes, after: empty.reservedBytes, released: empty.slabsReleased });`,
      { AETHER_CUDA_LIB: FAKE },
    );
    expect(r.slabs).toBeGreaterThan(1);
    expect(r.reserved).toBeGreaterThanOrEqual(64 << 20);
    expect(r.after).toBeLessThanOrEqual(1 << 20);
    expect(r.released).toBeGreaterThan(0);
  });

  test("aether pools demo runs on a GPU backend", () => {
    const r = aether(["pools", "demo", "--json"], { env: { AETHER_DEVICE: "hip", AETHER_HIP_LIB: FAKE } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).verdict).toBe("pass");
  });
});

describe("SHA-256 unavailable", () => {
  test("audit files are refused with CRYPTO_UNAVAILABLE and a clear message; the ring still works", () => {
    const log = join(dir, "refused.jsonl");
    const r = child(
      `const s = cryptoStatus();
       const p = DevicePools.create({ backend: "host", ignoreEnvAudit: true });
       let c = "", msg = ""; try { p.setAuditLog("${log}"); } catch (e) { c = e.code; msg = e.message; }
       const x = p.context("t", "rust"); x.free(x.alloc(10));
       const ring = p.audit().length;
       p.destroy();
       out({ s, c, msg, ring });`,
      { AETHER_CRYPTO_LIB: ABSENT },
    );
    expect(r.s.available).toBe(false);
    expect(r.s.message).toContain(ABSENT);
    expect(r.c).toBe("AETHER_ERR_CRYPTO_UNAVAILABLE");
    expect(r.msg).toContain("SHA-256 unavailable");
    expect(r.ring).toBe(3);
    expect(existsSync(log)).toBe(false);
  });

  test("AETHER_AUDIT_LOG without libcrypto: the manager refuses to run unaudited", () => {
    const r = child(`out({ c: code(() => DevicePools.create({ backend: "host" })) });`, {
      AETHER_CRYPTO_LIB: ABSENT,
      AETHER_AUDIT_LOG: join(dir, "never.jsonl"),
    });
    expect(r.c).toBe("AETHER_ERR_CRYPTO_UNAVAILABLE");
  });

  test("aether audit verify says why it cannot verify, in one line, exit 1", () => {
    const f = join(dir, "some.jsonl");
    require("node:fs").writeFileSync(f, "{}\n");
    const r = aether(["audit", "verify", f], { env: { AETHER_CRYPTO_LIB: ABSENT } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("AETHER_ERR_CRYPTO_UNAVAILABLE");
  });
});
