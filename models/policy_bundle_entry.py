"""MLflow "models from code" entry for the policy bundle: MLflow stores this file with the model and runs
it at load time, so the bundle is rebuilt from its JSON/joblib artifacts by the installed code instead of
unpickling a Python object (no cloudpickle of our classes in the registry)."""

import mlflow

from models.policy_bundle import PolicyBundleModel

mlflow.models.set_model(PolicyBundleModel())
