"""Models: behavioural segments, churn and high-value scores, judged and served via MLflow."""
