// Runs a PLC directory (in-memory mock DB, as @atproto/dev-env does without
// Postgres) and a Bluesky PDS in one process, both on 127.0.0.1 only, for
// PostFlow's provider tests (internal/realpeers). Env: PDS_PORT (fixed: the
// PDS names itself http://localhost:PDS_PORT in DID documents), PLC_PORT (0
// picks a free one), PDS_DATA_DIRECTORY (fresh per start: PLC is in memory
// and the secrets below are random per start). Prints one READY line.
import events from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import * as plc from '@did-plc/server'
import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'

const pdsPort = Number(process.env.PDS_PORT || 2583)
const dataDir = path.resolve(process.env.PDS_DATA_DIRECTORY || './data')
fs.mkdirSync(path.join(dataDir, 'blobs'), { recursive: true })
const hex = () => crypto.randomBytes(32).toString('hex')

const plcServer = plc.PlcServer.create({ db: plc.Database.mock() })
const plcHttp = plcServer.app.listen(Number(process.env.PLC_PORT || 0), '127.0.0.1')
await events.once(plcHttp, 'listening')
const plcUrl = `http://127.0.0.1:${plcHttp.address().port}`

const defaults = {
  PDS_HOSTNAME: 'localhost',
  PDS_PORT: String(pdsPort),
  PDS_DATA_DIRECTORY: dataDir,
  PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blobs'),
  PDS_DID_PLC_URL: plcUrl,
  PDS_JWT_SECRET: hex(),
  PDS_DPOP_SECRET: hex(),
  PDS_ADMIN_PASSWORD: 'admin-pass',
  PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: hex(),
  PDS_INVITE_REQUIRED: 'false',
  PDS_DEV_MODE: 'true',
}
for (const [k, v] of Object.entries(defaults)) process.env[k] ??= v

const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
// pds.start() would listen on all interfaces; start its parts by hand instead.
await pds.ctx.sequencer.start()
const pdsHttp = pds.app.listen(pdsPort, '127.0.0.1')
await events.once(pdsHttp, 'listening')
console.log(`READY pds=http://127.0.0.1:${pdsPort} plc=${plcUrl} data=${dataDir}`)

const stop = async () => {
  pdsHttp.close()
  plcHttp.close()
  await pds.ctx.destroy().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
