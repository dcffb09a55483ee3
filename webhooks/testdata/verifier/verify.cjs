// Verifies webhook messages with the Standard Webhooks JavaScript library,
// independently of PostFlow's Go code. Reads a JSON list of
// {secret, headers, body} on stdin; writes a list of "ok" or
// "refused: <reason>", one per message, on stdout.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((m) => {
    try {
      new Webhook(m.secret).verify(m.body, m.headers);
      return "ok";
    } catch (e) {
      return "refused: " + e.message;
    }
  });
  process.stdout.write(JSON.stringify(out));
});
