# The component image of the EuroSAT pipeline on Kubeflow Pipelines, Vertex AI Pipelines,
# Vertex AI Training and Dataflow workers: the official TFX image of the very TFX version the
# pipeline is compiled with, plus this project (so components.transform.preprocessing_fn and
# components.trainer.run_fn import). The TFX image keeps Beam's worker boot as its entrypoint,
# which is what lets Dataflow use it as sdk_container_image.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/eurosat-tfx:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/eurosat-tfx:TAG
#   python pipeline_runner.py --runner vertex --image REGION-docker.pkg.dev/PROJECT/REPO/eurosat-tfx:TAG ...
# The official TF Serving image (serving.contract.TF_SERVING_VERSION): its tensorflow_model_server
# binary is what the infra gate loads each model in on Vertex AI (--infra-gate process).
ARG TF_SERVING_VERSION=2.19.1
FROM tensorflow/serving:${TF_SERVING_VERSION} AS tf-serving

FROM gcr.io/tfx-oss-public/tfx:1.21.0
COPY --from=tf-serving /usr/bin/tensorflow_model_server /usr/local/bin/tensorflow_model_server

# Keras 2 (tf_keras) for TFX/TFMA, as everywhere else in the project.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONDONTWRITEBYTECODE=1

# pipeline.config.IMAGE_PROJECT_DIR: the compiled spec reads the schema at /pipeline/schema/schema.pbtxt.
WORKDIR /pipeline
COPY pyproject.toml README.md requirements.lock ./
COPY components ./components
COPY pipeline ./pipeline
COPY schema ./schema
COPY serving ./serving

# Exactly the stack of requirements.lock (as scripts/setup.sh installs it locally; packages the
# base image already has at the locked version are kept), then the project without resolving.
RUN python -m pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
 && python -m pip install --no-cache-dir --no-deps . \
 && python -c "import components.transform, components.trainer, pipeline.pipeline"
