"""netdef's Caffe schema: ``pb`` is the generated module for netdef.proto.

netdef.proto mirrors BVLC caffe.proto (see its header) under the package name
``netdef``, so ``pb.NetParameter``, ``pb.SolverParameter``, ``pb.BlobProto`` ...
read and write real Caffe prototxt text and .caffemodel/.solverstate binaries,
and can be loaded beside pycaffe's caffe_pb2 in one process.

The generated netdef_pb2.py / netdef_pb2.pyi are committed. After editing
netdef.proto, regenerate them in place from the repository root with::

    python3 -m grpc_tools.protoc -Inetdef/proto --python_out=netdef/proto --pyi_out=netdef/proto netdef/proto/netdef.proto

(or ``python3 -c "from netdef.proto import regenerate; regenerate()"``, which
runs exactly that command). grpc_tools (the grpcio-tools package) is only
needed to regenerate, not to use ``pb``.
"""
from pathlib import Path

from netdef.proto import netdef_pb2 as pb

__all__ = ["pb", "PROTO_DIR", "PROTO_FILE", "regenerate"]

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = PROTO_DIR / "netdef.proto"


def regenerate(out_dir=PROTO_DIR):
    """Run grpc_tools.protoc on netdef.proto, writing netdef_pb2.py and .pyi into out_dir.

    The include path is this directory alone, exactly as in the command in the
    module docstring, so the output for out_dir == PROTO_DIR is byte-identical
    to the committed files. Returns the path of the generated netdef_pb2.py.
    Raises ImportError if grpc_tools is not installed and RuntimeError if protoc
    fails.
    """
    from grpc_tools import protoc  # deferred: only needed to regenerate

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        str(PROTO_FILE),
    ]
    status = protoc.main(args)
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}: {' '.join(args)}")
    return out_dir / "netdef_pb2.py"
