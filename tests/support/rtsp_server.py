"""A real RTSP server for tests: GStreamer's gst-rtsp-server serving an H.264 test pattern on loopback.

Runs under Debian's ``/usr/bin/python3`` (python3-gi + gir1.2-gst-rtsp-server-1.0); the project venv cannot
import ``gi``. Started and stopped by ``tests/support/rtsp.py``.

Modes:
  ``normal``  serve ``rtsp://127.0.0.1:PORT/test`` (videotestsrc ! x264enc ! rtph264pay) for ever.
  ``stall``   same, but after ``--stall-after-frames`` frames of each session a valve drops every
              buffer: the RTSP session stays up and the socket stays open, yet no frame ever arrives.
  ``file``    serve ``--file`` (an MP4 holding H.264) as it is, paced in real time, no re-encoding:
              ``filesrc ! qtdemux ! h264parse ! rtph264pay`` (bench/bench_live.py's cameras).
  ``silent``  accept TCP connections on the port and never answer (a camera whose RTSP daemon hangs).

Prints ``READY <port>`` on stdout once it listens. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import socket
import sys


def _serve_silent(port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    print(f"READY {port}", flush=True)
    held = []  # keep accepted sockets open and unanswered
    while True:
        conn, _ = listener.accept()
        held.append(conn)


def _launch_line(args: argparse.Namespace) -> str:
    if args.mode == "file":
        return f"( filesrc location={args.file} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    valve = "valve name=gate drop=false ! " if args.mode == "stall" else ""
    return (
        f"( videotestsrc is-live=true pattern={args.pattern} "
        f"! capsfilter name=size caps=video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
        f"! {valve}x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bitrate=800 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def _serve_rtsp(args: argparse.Namespace) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_launch_line(args))
    factory.set_shared(False)
    if args.resize_after_frames:

        def on_configure_resize(_factory, media):
            size = media.get_element().get_by_name("size")
            passed = [0]

            def count_frames(_pad, _info):
                passed[0] += 1
                if passed[0] == args.resize_after_frames:
                    caps = f"video/x-raw,width={args.resize_width},height={args.resize_height},framerate={args.fps}/1"
                    size.set_property("caps", Gst.Caps.from_string(caps))
                    print("RESIZED", flush=True)
                return Gst.PadProbeReturn.OK

            size.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, count_frames)

        factory.connect("media-configure", on_configure_resize)
    if args.mode == "stall":

        def on_configure(_factory, media):
            gate = media.get_element().get_by_name("gate")
            passed = [0]

            def count_frames(_pad, _info):
                passed[0] += 1
                if passed[0] == args.stall_after_frames:
                    gate.set_property("drop", True)
                    print("STALLED", flush=True)
                return Gst.PadProbeReturn.OK

            gate.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count_frames)

        factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(3)
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["normal", "stall", "silent", "file"], default="normal")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--file", default="", help="mode file: the MP4 (H.264) to serve")
    parser.add_argument("--pattern", default="ball")
    parser.add_argument("--stall-after-frames", type=int, default=50, help="frames each session gets before a stall")
    parser.add_argument("--resize-after-frames", type=int, default=0,
                        help="change the resolution mid-stream after this many frames of each session (0: never)")
    parser.add_argument("--resize-width", type=int, default=480)
    parser.add_argument("--resize-height", type=int, default=360)
    args = parser.parse_args()
    if args.mode == "silent":
        _serve_silent(args.port)
    else:
        _serve_rtsp(args)


if __name__ == "__main__":
    main()
