"""Models: customer segmentation and churn, trained and registered in MLflow."""
