// Node-RED function "thresholds": the same limit check as hazardwatch's plant, per point.
// Input: a parsed gateway protocol v1 batch (object form). Output 1: the batch's points for
// InfluxDB; output 2: one signed webhook request per newly raised alarm.
// `tags` (tag -> {source, enterprise, L, LL, H, HH, deadband}) is put into context by On Start.
const tags = context.get("tags");
const active = context.get("active");
const secret = env.get("HW_BENCH_WEBHOOK_SECRET");
const batch = msg.payload;
const points = [];
const alarms = [];
let refused = 0;

const RANK = {L: 1, H: 1, LL: 2, HH: 2};

// The highest limit crossed; an active condition clears only one deadband inside its limit.
function condition(t, v, previous) {
    const held = (c) => (previous === c ? t.deadband : 0);
    if (t.HH !== undefined && v > t.HH - held("HH")) return "HH";
    if (t.H !== undefined && v > t.H - held("H") - held("HH")) return "H";
    if (t.LL !== undefined && v < t.LL + held("LL")) return "LL";
    if (t.L !== undefined && v < t.L + held("L") + held("LL")) return "L";
    return null;
}

for (const p of batch.points || []) {
    const t = tags[p.tag];
    if (t === undefined || typeof p.v !== "number" || !Number.isFinite(p.v)
        || typeof p.ts !== "number") {
        refused += 1;
        continue;
    }
    // The series and fields of hazardwatch's reading_v1: the same work for InfluxDB.
    points.push({
        measurement: "reading",
        tags: {enterprise: t.enterprise, source: t.source, unit: t.unit, tag: p.tag,
               quantity: t.quantity},
        fields: {v: p.v, q: p.q || 0},
        timestamp: p.ts,
    });
    const previous = active[p.tag] || null;
    const now = condition(t, p.v, previous);
    if (now === previous) continue;
    active[p.tag] = now;
    // Notify when an alarm starts or rises (H -> HH), not when it falls back or clears.
    if (now === null || (previous !== null && RANK[now] <= RANK[previous])) continue;
    const body = JSON.stringify({
        type: "alarm", enterprise: t.enterprise, source: t.source, tag: p.tag,
        condition: now, value: p.v, ts_ms: p.ts, gw: batch.gw, seq: batch.seq,
    });
    const stamp = Math.floor(Date.now() / 1000);
    const signature = crypto.createHmac("sha256", secret).update(stamp + "." + body).digest("hex");
    alarms.push({
        payload: body,
        headers: {
            "Content-Type": "application/json; charset=utf-8",
            "X-Hazardwatch-Timestamp": String(stamp),
            "X-Hazardwatch-Signature": "v1=" + signature,
            "Idempotency-Key": p.tag + ":" + p.ts + ":" + now,
        },
    });
}
if (refused) context.set("refused", (context.get("refused") || 0) + refused);
return [points.length ? {payload: points} : null, alarms];
