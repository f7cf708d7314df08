"""Project fixtures written as the editors write them (Kdenlive 22.12 document 1.04, Shotcut 22.12), and melt.

Timeline (frames at the project rate): V1 = clip "shot" (media frames 0-99) at 0, a 10-frame gap, the same
media again (frames 150-249) at 110; A1 = a quiet 440 Hz tone under the whole edit. Kdenlive's zone is
frames 20-160. Real editor-saved files live in tests/fixtures/<kind>/ (see PROVENANCE.md there); `real_project`
copies one into a test folder.
"""

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile

from engine.training.sample_video import make_demo_video
from tests.conftest import installed

MELT_TIMEOUT = 120
MELT_ATTEMPTS = 3  # melt 7.12 sometimes never starts its consumer when several melts run at once (0-byte output)
TONE_LEVEL = 0.1
FIXTURES = Path(__file__).parent / "fixtures"


def media(folder: Path, rate: Fraction) -> tuple[Path, Path]:
    video = make_demo_video(folder / "shot.mp4", seconds=12.0, rate=rate)
    t = np.arange(12 * 48000) / 48000
    tone = folder / "dialogue.wav"
    soundfile.write(tone, (TONE_LEVEL * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000, subtype="FLOAT")
    return video, tone


def burst(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A foley stand-in with a sharp onset at sample 0: 1 kHz at half scale."""
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def _profile(rate: Fraction) -> str:
    return (f' <profile description="HD 1080p" width="1920" height="1080" progressive="1" sample_aspect_num="1" '
            f'sample_aspect_den="1" display_aspect_num="16" display_aspect_den="9" frame_rate_num="{rate.numerator}" '
            f'frame_rate_den="{rate.denominator}" colorspace="709"/>\n')


def kdenlive_project(folder: Path, rate: Fraction, *, relative: bool = True, speed: float | None = None,
                     version: str = "1.04") -> Path:
    video, tone = media(folder, rate)
    resource = video.name if relative else str(video)
    warp = ""
    if speed is not None:
        warp = (f'  <property name="mlt_service">timewarp</property>\n  <property name="warp_speed">{speed}</property>\n'
                f'  <property name="warp_resource">{resource}</property>\n')
    video_service = warp or '  <property name="mlt_service">avformat-novalidate</property>\n'
    text = f"""<?xml version='1.0' encoding='utf-8'?>
<mlt LC_NUMERIC="C" producer="main_bin" version="7.12.0" root="{folder}">
{_profile(rate)} <producer id="producer0" in="0" out="299">
  <property name="length">300</property>
  <property name="eof">pause</property>
  <property name="resource">{resource}</property>
  <property name="mlt_service">avformat-novalidate</property>
  <property name="kdenlive:clipname">shot</property>
  <property name="kdenlive:clip_type">0</property>
  <property name="kdenlive:id">2</property>
 </producer>
 <producer id="producer1" in="0" out="299">
  <property name="length">300</property>
  <property name="eof">pause</property>
  <property name="resource">{tone.name if relative else tone}</property>
  <property name="mlt_service">avformat-novalidate</property>
  <property name="kdenlive:clipname">dialogue</property>
  <property name="kdenlive:clip_type">1</property>
  <property name="kdenlive:id">3</property>
 </producer>
 <playlist id="main_bin">
  <property name="kdenlive:docproperties.audioTarget">1</property>
  <property name="kdenlive:docproperties.kdenliveversion">22.12.3</property>
  <property name="kdenlive:docproperties.version">{version}</property>
  <property name="kdenlive:docproperties.videoTarget">2</property>
  <property name="kdenlive:docproperties.zonein">20</property>
  <property name="kdenlive:docproperties.zoneout">160</property>
  <property name="xml_retain">1</property>
  <entry producer="producer0" in="0" out="299"/>
  <entry producer="producer1" in="0" out="299"/>
 </playlist>
 <producer id="black_track" in="0" out="2147483646">
  <property name="length">2147483647</property>
  <property name="eof">continue</property>
  <property name="resource">black</property>
  <property name="mlt_service">color</property>
  <property name="set.test_audio">0</property>
 </producer>
 <producer id="producer2" in="0" out="299">
  <property name="length">300</property>
  <property name="resource">{tone.name if relative else tone}</property>
  <property name="mlt_service">avformat-novalidate</property>
  <property name="kdenlive:id">3</property>
 </producer>
 <playlist id="playlist0">
  <property name="kdenlive:audio_track">1</property>
  <entry producer="producer2" in="0" out="209"/>
 </playlist>
 <playlist id="playlist1">
  <property name="kdenlive:audio_track">1</property>
 </playlist>
 <tractor id="tractor0" in="0">
  <property name="kdenlive:audio_track">1</property>
  <property name="kdenlive:track_name">Dialogue</property>
  <track hide="video" producer="playlist0"/>
  <track hide="video" producer="playlist1"/>
 </tractor>
 <producer id="producer3" in="0" out="299">
  <property name="length">300</property>
  <property name="resource">{resource}</property>
{video_service}  <property name="kdenlive:clipname">shot</property>
  <property name="kdenlive:id">2</property>
  <property name="set.test_audio">1</property>
 </producer>
 <playlist id="playlist2">
  <entry producer="producer3" in="0" out="99"/>
  <blank length="10"/>
  <entry producer="producer3" in="150" out="249"/>
 </playlist>
 <playlist id="playlist3"/>
 <tractor id="tractor1" in="0">
  <track hide="audio" producer="playlist2"/>
  <track hide="audio" producer="playlist3"/>
 </tractor>
 <tractor id="tractor2" in="0" out="209">
  <track producer="black_track"/>
  <track producer="tractor0"/>
  <track producer="tractor1"/>
  <transition id="transition0">
   <property name="a_track">0</property>
   <property name="b_track">1</property>
   <property name="mlt_service">mix</property>
   <property name="kdenlive_id">mix</property>
   <property name="internal_added">237</property>
   <property name="always_active">1</property>
   <property name="accepts_blanks">1</property>
   <property name="sum">1</property>
  </transition>
 </tractor>
</mlt>
"""
    path = folder / "edit.kdenlive"
    path.write_text(text)
    return path


def shotcut_project(folder: Path, rate: Fraction) -> Path:
    video, tone = media(folder, rate)
    text = f"""<?xml version="1.0" standalone="no"?>
<mlt LC_NUMERIC="C" version="7.12.0" title="Shotcut version 22.12.21" producer="main_bin">
{_profile(rate)}  <playlist id="main_bin">
    <property name="xml_retain">1</property>
  </playlist>
  <producer id="black" in="0" out="209">
    <property name="length">210</property>
    <property name="eof">pause</property>
    <property name="resource">0</property>
    <property name="mlt_service">color</property>
    <property name="set.test_audio">0</property>
  </producer>
  <playlist id="background">
    <entry producer="black" in="0" out="209"/>
  </playlist>
  <chain id="chain0" out="299">
    <property name="length">300</property>
    <property name="resource">{video}</property>
    <property name="mlt_service">avformat-novalidate</property>
    <property name="shotcut:caption">shot.mp4</property>
  </chain>
  <playlist id="playlist0">
    <property name="shotcut:video">1</property>
    <property name="shotcut:name">V1</property>
    <entry producer="chain0" in="0" out="99"/>
    <blank length="10"/>
    <entry producer="chain0" in="150" out="249"/>
  </playlist>
  <chain id="chain1" out="299">
    <property name="length">300</property>
    <property name="resource">{tone}</property>
    <property name="mlt_service">avformat-novalidate</property>
    <property name="shotcut:caption">dialogue.wav</property>
  </chain>
  <playlist id="playlist1">
    <property name="shotcut:audio">1</property>
    <property name="shotcut:name">A1</property>
    <entry producer="chain1" in="0" out="209"/>
  </playlist>
  <tractor id="tractor0" title="Shotcut version 22.12.21" in="0" out="209">
    <property name="shotcut">1</property>
    <property name="shotcut:projectAudioChannels">2</property>
    <track producer="background"/>
    <track producer="playlist0"/>
    <track producer="playlist1" hide="video"/>
    <transition id="transition0">
      <property name="a_track">0</property>
      <property name="b_track">2</property>
      <property name="mlt_service">mix</property>
      <property name="always_active">1</property>
      <property name="sum">1</property>
    </transition>
  </tractor>
</mlt>
"""
    path = folder / "edit.mlt"
    path.write_text(text)
    return path


def _melt(command: list[str]) -> subprocess.CompletedProcess:
    """Run melt; a run that hangs (the start-up race above, measured: 7 of 30 runs with 4-6 at once) is retried."""
    def run() -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=MELT_TIMEOUT // MELT_ATTEMPTS)
    for _ in range(MELT_ATTEMPTS - 1):
        try:
            return run()
        except subprocess.TimeoutExpired:
            continue
    return run()


def render_audio(project: Path, out: Path, last_frame: int) -> np.ndarray:
    """Render the project's audio with the real melt: 48 kHz stereo -> mono float samples."""
    run = _melt([installed("melt"), "-quiet", str(project), "in=0", f"out={last_frame}", "-consumer",
                 f"avformat:{out}", "vn=1", "acodec=pcm_s16le", "ar=48000", "ac=2", "real_time=-1"])
    if run.returncode != 0 or not out.is_file():  # melt can exit 0 without output: check the file
        raise AssertionError(f"melt failed ({run.returncode}): {run.stderr[-2000:]}")
    audio, rate = soundfile.read(out, dtype="float64")
    assert rate == 48000
    return audio.mean(axis=1)


def otio_timeline(folder: Path, rate: Fraction):
    """The same edit as the MLT fixtures, as an OTIO timeline (V1: shot 0-99 at 0, gap, shot 150-249 at 110)."""
    import opentimelineio as otio
    from opentimelineio.opentime import RationalTime, TimeRange

    video, _ = media(folder, rate)
    r = float(rate)
    reference = otio.schema.ExternalReference(target_url=video.as_uri(),
                                              available_range=TimeRange(RationalTime(0, r), RationalTime(300, r)))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.append(otio.schema.Clip(name="shot-a", media_reference=reference.clone(),
                                  source_range=TimeRange(RationalTime(0, r), RationalTime(100, r))))
    track.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(10, r))))
    track.append(otio.schema.Clip(name="shot-b", media_reference=reference.clone(),
                                  source_range=TimeRange(RationalTime(150, r), RationalTime(100, r))))
    timeline = otio.schema.Timeline(name="edit")
    timeline.tracks.append(track)
    return timeline


def real_project(kind: str, name: str, folder: Path) -> Path:
    """A copy of the real editor-saved fixture tests/fixtures/<kind>/<name> in `folder` (its media go beside it)."""
    return Path(shutil.copy(FIXTURES / kind / name, folder / name))


def tone_file(path: Path, frequency: float, seconds: float, channels: int, rate: int = 44100) -> Path:
    """A sine tone encoded by ffmpeg in the format the path names (e.g. the .ogg media a fixture refers to)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [installed("ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={frequency}:duration={seconds}:sample_rate={rate}", "-ac", str(channels), str(path)],
        capture_output=True, text=True, timeout=MELT_TIMEOUT,
    )
    if run.returncode != 0:
        raise AssertionError(f"ffmpeg failed: {run.stderr[-1000:]}")
    return path


def render_tractor_audio(project: Path, tractor_id: str, out: Path, last_frame: int) -> np.ndarray:
    """Render one tractor of the project (e.g. a Kdenlive sequence that is not the active one) with melt.

    melt plays the document's last tractor, so a probe copy gets one more tractor that plays `tractor_id`;
    the project itself is not touched.
    """
    text = project.read_text()
    probe_tractor = f'<tractor id="foley_test_probe"><track producer="{tractor_id}"/></tractor>\n</mlt>'
    probe = project.with_name(f"probe-{project.name}")
    probe.write_text(text[: text.rindex("</mlt>")] + probe_tractor)
    return render_audio(probe, out, last_frame)
