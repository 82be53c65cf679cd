import t from "tap"
import { canConnect } from "../../bootstrap/natsServer.ts"
import { natsClient, natsServer } from "./nats.ts"

t.test("a private nats-server starts on a free port, answers, and stops", async (t) => {
  const server = await natsServer(t)
  t.not(server.port, 4222, "never the shared port")
  const nc = await natsClient(t, server.url)
  const sub = nc.subscribe("ping.test", { max: 1, callback: (_err, msg) => void msg.respond(msg.data) })
  const reply = await nc.request("ping.test", "hello", { timeout: 2000 })
  t.equal(reply.string(), "hello")
  sub.unsubscribe()
  await nc.close()
  await server.stop()
  t.notOk(await canConnect("127.0.0.1", server.port, 200), "port closed after stop")
})
