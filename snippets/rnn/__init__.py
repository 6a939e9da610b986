"""Recurrent networks: RNN, BPTT, LSTM, GRU, sequence outputs (docs/*/rnn/)."""
