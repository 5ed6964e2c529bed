// The npm `memcached` client, unchanged, against lanner.
// Usage: node memcached_check.js MODULE_DIR PLAIN_ADDR ECHO_ADDR RING_ADDR1 RING_ADDR2 RING_ADDR3
//
// PLAIN_ADDR runs with the default configuration, ECHO_ADDR with echo_full_key = true. The
// three RING servers are used together: the client places queues on them with its ketama
// ring, and the Rust test checks that lanner-client would place each queue on the same server.
// Prints one line per check; exits non-zero on the first failure.
'use strict';
const path = require('path');
const util = require('util');

const [moduleDir, plain, echo, ...ring] = process.argv.slice(2);
const Memcached = require(path.join(moduleDir, 'memcached'));

function check(name, condition) {
  if (!condition) {
    console.log(`FAILED ${name}`);
    process.exit(1);
  }
  console.log(`ok ${name}`);
}

function connect(servers) {
  // poolSize 1: `/open` and `/close` must travel on the same connection. `timeout` must
  // exceed the longest t= used; retries 0 reports failures at once.
  const client = new Memcached(servers, { poolSize: 1, timeout: 10000, retries: 0 });
  return {
    set: util.promisify(client.set).bind(client),
    get: util.promisify(client.get).bind(client),
    del: util.promisify(client.del).bind(client),
    end: () => client.end(),
  };
}

async function againstOneServer(address, label) {
  const c = connect(address);
  check(`${label}: set`, (await c.set('work', 'hello', 0)) === true);
  check(`${label}: get`, (await c.get('work')) === 'hello');
  check(`${label}: miss`, (await c.get('work')) === undefined);
  // Kestrel ignores flags and answers 0, so a number comes back as its text.
  await c.set('work', 42, 0);
  check(`${label}: numbers come back as strings`, (await c.get('work')) === '42');
  await c.set('work', 'a', 0);
  check(`${label}: get t=`, (await c.get('work/t=100')) === 'a');
  const started = Date.now();
  check(`${label}: blocking miss`, (await c.get('work/t=200')) === undefined);
  check(`${label}: waited`, Date.now() - started >= 190);
  await c.set('work', 'b', 0);
  check(`${label}: open`, (await c.get('work/open')) === 'b');
  check(`${label}: close`, (await c.get('work/close')) === undefined);
  await c.set('work', 'c', 0);
  check(`${label}: open again`, (await c.get('work/t=100/open')) === 'c');
  check(`${label}: abort`, (await c.get('work/abort')) === undefined);
  check(`${label}: peek`, (await c.get('work/peek')) === 'c');
  check(`${label}: aborted item is back`, (await c.get('work')) === 'c');
  check(`${label}: delete`, (await c.del('work')) === true);
  c.end();
}

async function main() {
  await againstOneServer(plain, 'plain');
  await againstOneServer(echo, 'echo');
  const c = connect(ring);
  for (let i = 0; i < 30; i++) {
    await c.set(`ring${i}`, `ring${i}`, 0);
  }
  check('ring: 30 queues placed', true);
  c.end();
  console.log('memcached (npm): all checks passed');
}

main().catch((error) => {
  console.log(`FAILED with ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
