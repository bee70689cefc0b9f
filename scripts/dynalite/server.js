// dynalite (a DynamoDB emulator on LevelDB, here in memory) on 127.0.0.1 and a
// free port, for scripts/emulators: the second DynamoDB the AWS adapter's
// contract runs on, next to moto's. dynalite applies each write under a
// per-item lock, so its conditional writes are atomic, as DynamoDB's are.
//
//   node scripts/dynalite/server.js --parent PID
//
// Prints the port on the first line of stdout once it listens, then serves
// until SIGTERM/SIGINT, or until the process PID is gone (so a killed test run
// never leaves it behind). Loads dynalite from .tools/dynalite (installed by
// scripts/test with `npm ci` from this folder's package-lock.json), or from
// NODE_PATH.
//
// What dynalite does not do, and what this launcher does about it:
// - UpdateTimeToLive is not an operation it knows (it has no TTL at all).
//   The adapter's table setup (provision::create_table) enables TTL, so this
//   launcher acknowledges the call and ignores it. Nothing in the adapter
//   relies on TTL deletion (DynamoDB deletes expired items up to days late;
//   reads compare `valid_until` against the clock), so no case loses anything.
// - Tables stay CREATING for 500 ms by default: set to 0 here.
'use strict'

const path = require('path')

function load () {
  const local = path.join(__dirname, '..', '..', '.tools', 'dynalite', 'node_modules', 'dynalite')
  try {
    return require(local)
  }
  catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e
    return require('dynalite')
  }
}

function parentArg () {
  const i = process.argv.indexOf('--parent')
  return i > 0 ? Number(process.argv[i + 1]) || 0 : 0
}

function alive (pid) {
  try {
    process.kill(pid, 0)
    return true
  }
  catch (e) {
    return e.code === 'EPERM'
  }
}

// Answers UpdateTimeToLive as DynamoDB does, without doing anything.
function updateTimeToLive (req, res) {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    let spec = {}
    try {
      spec = JSON.parse(Buffer.concat(chunks).toString('utf8')).TimeToLiveSpecification || {}
    }
    catch (_) { /* answered with an empty spec */ }
    const body = JSON.stringify({ TimeToLiveSpecification: spec })
    res.writeHead(200, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': 'ferry-dynalite-ttl',
    })
    res.end(body)
  })
}

function main () {
  const dynalite = load()
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  const [handler] = server.listeners('request')
  server.removeAllListeners('request')
  server.on('request', (req, res) => {
    const target = String(req.headers['x-amz-target'] || '')
    if (target.endsWith('.UpdateTimeToLive')) return updateTimeToLive(req, res)
    return handler(req, res)
  })

  const stop = () => process.exit(0)
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  const parent = parentArg()
  if (parent) {
    setInterval(() => {
      if (!alive(parent)) stop()
    }, 1000).unref()
  }

  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(server.address().port + '\n')
  })
}

main()
