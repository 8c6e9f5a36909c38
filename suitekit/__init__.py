"""What k8sdeploy and the suite's services both need, and nothing else: password hashing and its sizing, and email
addresses as the suite compares them. A library of its own so that the tool imports nothing of the product it
deploys (deploy/ never imports services/); each service image holds it beside services/."""
