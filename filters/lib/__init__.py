"""What the filters share and no filter is: splitting the think block (``text``), finding and
comparing answers (``extract``, ``answers``, ``answer_forms``), reading a trace's conclusions
(``conclusion``), and telling languages and scripts apart (``langid``, ``switches``)."""
