"""Write the ONNX backend node test cases to disk.

onnx's wheel ships no node test data, and its `generate-data` command only
writes the `simple` model cases, so we build the node cases in memory with
`onnx.backend.test.case.node.collect_testcases()` and serialise them in the
usual layout: <out>/<case>/model.onnx, <case>/test_data_set_N/{input,output}_K.pb.
"""
import os
import shutil
import sys

from onnx import TensorProto, numpy_helper
from onnx.backend.test.case import node as node_cases


def serialize_value(value, type_proto, name):
    if type_proto.HasField("map_type"):
        return numpy_helper.from_dict(value, name).SerializeToString()
    if type_proto.HasField("sequence_type"):
        return numpy_helper.from_list(value, name).SerializeToString()
    if type_proto.HasField("optional_type"):
        return numpy_helper.from_optional(value, name).SerializeToString()
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, name).SerializeToString()


def main():
    out = sys.argv[1]
    tmp = out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    cases = node_cases.collect_testcases()
    count = 0
    for case in cases:
        case_dir = os.path.join(tmp, case.name)
        os.makedirs(case_dir)
        with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(case_dir, f"test_data_set_{i}")
            os.makedirs(ds)
            for j, value in enumerate(inputs):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(serialize_value(value, graph.input[j].type, graph.input[j].name))
            for j, value in enumerate(outputs):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(serialize_value(value, graph.output[j].type, graph.output[j].name))
        count += 1
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    with open(os.path.join(out, "COMPLETE"), "w") as f:
        f.write(f"{count}\n")
    print(f"wrote {count} node cases to {out}")


if __name__ == "__main__":
    main()
