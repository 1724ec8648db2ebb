"""Generation backends for sampling and greedy evaluation (``codedpo sample``).

One request per sample: the prompt's token ids (the problem as one user turn, rendered with the
tokenizer's own chat template), the sample's seed and the stop tokens read from the model's files.
Both backends take the same requests and give back generated token ids; the same code then cuts
them at the first stop token, decodes them and writes the records, so the two backends differ
only in how they run the model.

- :mod:`codedpo.generation.requests`: prompts, per-sample seeds, requests;
- :mod:`codedpo.generation.stops`: stop tokens from ``generation_config.json``, the tokenizer and
  the chat template;
- :mod:`codedpo.generation.records`: stop handling, decoding, sample records, provenance;
- :mod:`codedpo.generation.hf_backend`: transformers (any device; the default);
- :mod:`codedpo.generation.vllm_backend`: vLLM (CUDA GPUs; imported only when chosen).
"""
