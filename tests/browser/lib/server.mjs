//! Starts a switchboard binary for a browser test and tells where it listens.
//!
//! The binary comes from env SWITCHBOARD_BIN (default target/debug/switchboard,
//! relative to the repository root). It is started with the given arguments
//! plus `--listen 127.0.0.1:0`; the bound port is read from its
//! `listening dialect=... addr=127.0.0.1:PORT` log line on stderr.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ANSI = /\x1b\[[0-9;]*m/g;

/** Path of the switchboard binary to test. */
export function binaryPath() {
  const bin = process.env.SWITCHBOARD_BIN || path.join(ROOT, 'target/debug/switchboard');
  return path.isAbsolute(bin) ? bin : path.resolve(ROOT, bin);
}

/**
 * Starts the server and waits until it listens.
 * @param {string[]} [args] extra command-line arguments (e.g. ['--dialect', 'peerjs'])
 * @param {{timeoutMs?: number, env?: Record<string,string>, listen?: string}} [opts]
 * @returns {Promise<{url: string, wsUrl: string, port: number, proc: import('node:child_process').ChildProcess, logs: () => string, stop: () => Promise<void>}>}
 */
export async function startServer(args = [], opts = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`switchboard binary not found at ${bin}: run 'cargo build --bin switchboard' or set SWITCHBOARD_BIN`);
  }
  const listen = opts.listen ?? '127.0.0.1:0';
  const proc = spawn(bin, [...args, '--listen', listen], {
    env: { ...process.env, RUST_LOG: 'switchboard=info', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const collect = (chunk) => { log += chunk.toString().replace(ANSI, ''); };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`switchboard did not report a listening address in time; its output:\n${log}`)),
      opts.timeoutMs ?? 15000);
    const onData = () => {
      // Not just `listening ... addr=`: with --turn-listen, a `TURN listening (udp)
      // addr=` line comes first. The \s after the port: all of it has been read.
      const m = log.match(/\blistening dialect=\S+ addr=(?:\[[^\]]*\]|[0-9.]+):(\d+)\s/);
      if (m) { done(); resolve(Number(m[1])); }
    };
    const onExit = (code, signal) => fail(new Error(`switchboard exited early (code ${code}, signal ${signal}); its output:\n${log}`));
    const done = () => {
      clearTimeout(timer);
      proc.stdout.off('data', onData); proc.stderr.off('data', onData); proc.off('exit', onExit);
    };
    const fail = (e) => { done(); proc.kill('SIGKILL'); reject(e); };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', onExit);
  });

  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => { clearTimeout(kill); resolve(); });
    proc.kill('SIGTERM');
  });

  return { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}`, port, proc, logs: () => log, stop };
}
