"use strict";
/**
 * Exact time for Premiere: ticks (254016000000 per second, as strings in the API, BigInt here), frame rates as
 * fractions from the sequence's timebase in ticks per frame, seconds as exact "n/d" strings for the engine, and
 * timecode as Premiere shows it (drop-frame with ';').
 */

const TICKS_PER_SECOND = 254016000000n;

function gcd(a, b) {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y) [x, y] = [y, x % y];
  return x;
}

/** A TickTime's exact value: its `ticks` string (its `ticksNumber` is a float, inexact past 2^53 ticks ≈ 9.8 h). */
function ticksOf(tickTime) {
  return BigInt(tickTime.ticks);
}

/** Seconds as the engine reads them: "12", "1001/24000". */
function secondsText(ticks) {
  const g = gcd(ticks, TICKS_PER_SECOND) || 1n;
  const [num, den] = [ticks / g, TICKS_PER_SECOND / g];
  return den === 1n ? `${num}` : `${num}/${den}`;
}

/** The frame rate of a timebase (ticks per frame, as Sequence.getTimebase() gives it): {num, den} frames/s. */
function rateOfTimebase(timebase) {
  const perFrame = BigInt(String(timebase).trim());
  if (perFrame <= 0n) throw new Error(`The sequence timebase '${timebase}' is not a number of ticks per frame.`);
  const g = gcd(TICKS_PER_SECOND, perFrame);
  return { num: TICKS_PER_SECOND / g, den: perFrame / g, ticksPerFrame: perFrame };
}

function rateText(rate) {
  return rate.den === 1n ? `${rate.num}` : `${rate.num}/${rate.den}`;
}

/** Whole frames from the sequence start to `ticks` (frames that have begun: floor). */
function framesAt(ticks, rate) {
  return ticks / rate.ticksPerFrame;
}

/**
 * hh:mm:ss:ff at the rounded frame rate; drop-frame skips frame numbers 0 and 1 (0-3 at 59.94) at the start of
 * every minute but each tenth, so the clock keeps to real time at 30000/1001 and 60000/1001.
 */
function timecode(frame, rate, dropFrame) {
  const nominal = (rate.num + rate.den / 2n) / rate.den;
  let count = frame;
  if (dropFrame) {
    const dropped = nominal / 15n; // 2 at 29.97, 4 at 59.94
    const perTenMinutes = nominal * 600n - dropped * 9n;
    const perMinute = nominal * 60n - dropped;
    const tens = count / perTenMinutes;
    const rest = count % perTenMinutes;
    count += dropped * 9n * tens + (rest > dropped ? dropped * ((rest - dropped) / perMinute) : 0n);
  }
  const ff = count % nominal;
  const seconds = count / nominal;
  const pad = (value) => String(value).padStart(2, "0");
  const hh = seconds / 3600n;
  const mm = (seconds / 60n) % 60n;
  const ss = seconds % 60n;
  return `${pad(hh)}:${pad(mm)}:${pad(ss)}${dropFrame ? ";" : ":"}${pad(ff)}`;
}

/** Drop-frame timecode applies only at the NTSC rates whose counts it corrects. */
function canDropFrame(rate) {
  return rate.den === 1001n && (rate.num === 30000n || rate.num === 60000n);
}

module.exports = { TICKS_PER_SECOND, ticksOf, secondsText, rateOfTimebase, rateText, framesAt, timecode,
  canDropFrame, gcd };
