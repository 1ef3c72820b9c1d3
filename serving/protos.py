"""Message classes of two small protos the dev server speaks but no installed wheel carries.

TF Serving's MonitoringConfig (tensorflow_serving/config/monitoring_config.proto; the tensorflow-serving-api wheel
ships model_server_config_pb2 but not it) and gRPC's health service (grpc/health/v1/health.proto, the
grpcio-health-checking package, which the local package indexes do not have; grpcio-tools, which could compile it,
needs protobuf 7 where TensorFlow pins 6).

Each file is declared here once, as the FileDescriptorProto protoc would produce from it (same
package, message, field and enum names and numbers, so the bytes on the wire and the text format
are those of the published .proto), and protobuf builds the classes from it: parsing, text format
and serialization are protobuf's own, nothing is hand-coded.
"""
from __future__ import annotations

from typing import Any, Tuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

# tensorflow_serving/config/monitoring_config.proto (TF Serving 2.19)
_MONITORING_CONFIG = """
name: "eurosat_dev_server/tensorflow_serving/config/monitoring_config.proto"
package: "tensorflow.serving"
syntax: "proto3"
message_type {
  name: "PrometheusConfig"
  field { name: "enable" number: 1 label: LABEL_OPTIONAL type: TYPE_BOOL json_name: "enable" }
  field { name: "path" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "path" }
}
message_type {
  name: "MonitoringConfig"
  field {
    name: "prometheus_config" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.PrometheusConfig" json_name: "prometheusConfig"
  }
}
"""

# grpc/health/v1/health.proto (https://github.com/grpc/grpc/blob/master/doc/health-checking.md)
_HEALTH = """
name: "eurosat_dev_server/grpc/health/v1/health.proto"
package: "grpc.health.v1"
syntax: "proto3"
message_type {
  name: "HealthCheckRequest"
  field { name: "service" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "service" }
}
message_type {
  name: "HealthCheckResponse"
  field {
    name: "status" number: 1 label: LABEL_OPTIONAL type: TYPE_ENUM
    type_name: ".grpc.health.v1.HealthCheckResponse.ServingStatus" json_name: "status"
  }
  enum_type {
    name: "ServingStatus"
    value { name: "UNKNOWN" number: 0 }
    value { name: "SERVING" number: 1 }
    value { name: "NOT_SERVING" number: 2 }
    value { name: "SERVICE_UNKNOWN" number: 3 }
  }
}
service {
  name: "Health"
  method {
    name: "Check" input_type: ".grpc.health.v1.HealthCheckRequest"
    output_type: ".grpc.health.v1.HealthCheckResponse"
  }
  method {
    name: "Watch" input_type: ".grpc.health.v1.HealthCheckRequest"
    output_type: ".grpc.health.v1.HealthCheckResponse" server_streaming: true
  }
}
"""

# A pool of our own: another library registering the real files in the default pool cannot clash.
_POOL = descriptor_pool.DescriptorPool()


def _messages(text: str, *names: str) -> Tuple[Any, ...]:
    file_proto = text_format.Parse(text, descriptor_pb2.FileDescriptorProto())
    file = _POOL.AddSerializedFile(file_proto.SerializeToString())
    return tuple(message_factory.GetMessageClass(file.message_types_by_name[n]) for n in names)


PrometheusConfig, MonitoringConfig = _messages(_MONITORING_CONFIG, "PrometheusConfig", "MonitoringConfig")
HealthCheckRequest, HealthCheckResponse = _messages(_HEALTH, "HealthCheckRequest", "HealthCheckResponse")
HEALTH_SERVICE = "grpc.health.v1.Health"  # the full service name clients call
