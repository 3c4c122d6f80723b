// Node-RED function "batch writes": gathers points into writes of up to 5,000 points, flushed
// at the latest 200 ms after the first point — hazardwatch's sink batch size and flush period.
const MAX_POINTS = 5000;
const LINGER_MS = 200;
let pending = context.get("pending");
for (const p of msg.payload) pending.push(p);
context.set("pending", pending);

function flush() {
    const timer = context.get("timer");
    if (timer) clearTimeout(timer);
    context.set("timer", null);
    const out = context.get("pending");
    context.set("pending", []);
    if (out.length) node.send({payload: out});
}

while (pending.length >= MAX_POINTS) {
    const rest = pending.splice(MAX_POINTS);
    node.send({payload: pending});
    pending = rest;
    context.set("pending", pending);
}
if (pending.length && !context.get("timer")) context.set("timer", setTimeout(flush, LINGER_MS));
return null;
