"""Image featurization job: images -> MobileNetV2 features -> StandardScaler/PCA/LogisticRegression."""

__version__ = "0.1.0"
