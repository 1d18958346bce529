"""Using a trained model: what is saved beside it (:mod:`.manifest`) and predictions on new
data (:mod:`.predict`)."""
