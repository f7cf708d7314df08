"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { secondsText, rateOfTimebase, rateText, timecode, canDropFrame } = require("../../editor_plugin/premiere_uxp/lib/time.js");

test("timebases in ticks per frame are the exact NTSC and integer rates", () => {
  assert.equal(rateText(rateOfTimebase("10594584000")), "24000/1001");
  assert.equal(rateText(rateOfTimebase("8475667200")), "30000/1001");
  assert.equal(rateText(rateOfTimebase("4237833600")), "60000/1001");
  assert.equal(rateText(rateOfTimebase("10160640000")), "25");
  assert.throws(() => rateOfTimebase("0"), /ticks per frame/);
});

test("ticks become exact seconds", () => {
  assert.equal(secondsText(254016000000n * 12n), "12");
  assert.equal(secondsText(10594584000n), "1001/24000");
  assert.equal(secondsText(0n), "0");
  // past 2^53 ticks (about 9.8 hours) a float would already be wrong
  assert.equal(secondsText(254016000000n * 36000n + 1n), "9144576000000001/254016000000");
});

test("drop-frame timecode skips two frame numbers a minute but every tenth", () => {
  const ntsc = rateOfTimebase("8475667200");
  assert.ok(canDropFrame(ntsc) && !canDropFrame(rateOfTimebase("10160640000")));
  assert.equal(timecode(1799n, ntsc, true), "00:00:59;29");
  assert.equal(timecode(1800n, ntsc, true), "00:01:00;02");
  assert.equal(timecode(17982n, ntsc, true), "00:10:00;00");
  assert.equal(timecode(107892n, ntsc, true), "01:00:00;00"); // an hour of real time
  assert.equal(timecode(1800n, ntsc, false), "00:01:00:00");
  assert.equal(timecode(3600n, rateOfTimebase("4237833600"), true), "00:01:00;04"); // 59.94 drops four
  assert.equal(timecode(240n, rateOfTimebase("10594584000"), false), "00:00:10:00");
});
