"""The Keras models: SGAN generators and discriminators, SER architectures, their losses, and
pretrained-weight transfer."""
