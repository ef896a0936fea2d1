"""Biology 9's content in Pathways, as data: framework, pathways and the students' first weeks."""

from __future__ import annotations

from lti_app.learners.models import GoalStatus

FRAMEWORK_CSV = """\
code,title,description,parent_code,prerequisite_codes,kind
CELL,Cells and life,How living things are built from cells and get their energy,,,academic
CELL.1,Cell structure,Name the parts of plant and animal cells and what each does,CELL,,academic
CELL.2,Microscopy,"Prepare a slide, focus a microscope, draw cells to scale",CELL,,academic
CELL.3,Cell transport,Explain diffusion and osmosis in cells,CELL,CELL.1,academic
CELL.4,Photosynthesis and respiration,How cells capture and release energy,CELL,CELL.3,academic
ECO,Ecosystems,How living things depend on each other and on their surroundings,,,academic
ECO.1,Food webs and energy flow,Build food webs and follow the energy in them,ECO,,academic
ECO.2,Cycles of matter,Explain the carbon and nitrogen cycles,ECO,ECO.1;CELL.4,academic
ECO.3,People and ecosystems,Weigh the effects of people on an ecosystem,ECO,ECO.1,academic
INQ,Scientific inquiry,"Plan a fair test, collect data and draw conclusions from it",,,academic
SKL,Learner skills,Skills for learning that go with every unit,,,non_academic
SKL.1,Collaboration,"Shares the work, listens, helps the group",SKL,,non_academic
SKL.2,Work habits,"Plans, meets deadlines, keeps going",SKL,,non_academic
"""


# One record a line, fields separated by "|"; an indented line continues the line before.
# pathway | title | competencies it leads to | description
# step    | title | competency it assesses | prerequisite competencies | description
# option  | title | modality | challenge 1-3 | minutes | interests | career clusters | approval
#         | description
# link    | label | url   (of the option above)
PATHWAYS = """
pathway | Cells and life | CELL | From the parts of a cell to how it gets its energy.
    Pick the way that suits you.
step | Meet the cell | CELL.1 | | What is inside a cell, and what does each part do?
option | Build a 3D cell model | project | 2 | 120 | art, drawing | ARTS | approval |
    Build a plant or animal cell from everyday materials and label every organelle.
    Tell your teacher your materials first.
option | Edible cell cake | offline_hands_on | 2 | 90 | cooking, baking | HOSPITALITY | approval |
    Bake a cell: every sweet is an organelle. Bring a photo and a key.
option | Virtual cell tour | video | 1 | 30 | gaming | | |
    Watch the tour, pause at each organelle and fill in the worksheet.
link | Cells alive: interactive cell models | https://www.cellsalive.com/cells/cell_model.htm
option | Muscle cells and the athlete | reading | 3 | 60 | sports | HEALTH_SCIENCE | |
    Read how training changes muscle cells and explain why athletes have more mitochondria.
step | Look through the microscope | CELL.2 | CELL.1 | See real cells and draw them to scale.
option | Onion and cheek cell lab | offline_hands_on | 2 | 60 | plants | STEM, HEALTH_SCIENCE
    | approval | Stain and observe onion skin and cheek cells in the lab. Safety briefing first.
option | Microscope simulator | online | 1 | 40 | gaming | INFORMATION_TECHNOLOGY | |
option | Yeast in bread dough | offline_hands_on | 3 | 90 | cooking, baking
    | HOSPITALITY, AGRICULTURE | |
    Watch yeast cells bud under the microscope and explain what makes bread rise.
step | How things get in and out | CELL.3 | CELL.1 |
    Diffusion and osmosis: why cells swell, shrink or stay the same.
option | Gummy bear osmosis | offline_hands_on | 1 | 45 | cooking | | |
    Leave gummy bears in water, salt water and sugar water overnight; measure and explain.
option | What is in a sports drink? | real_world_task | 3 | 120 | sports
    | HEALTH_SCIENCE, MARKETING | approval |
    Compare three drinks' labels and advise a team on what to drink during a match.
option | Animated explainer | video | 2 | 30 | music, art | ARTS | |
step | Energy for life | CELL.4 | CELL.3 |
    Photosynthesis and respiration: where the energy comes from.
option | Plants in the dark | offline_hands_on | 2 | 150 | plants, gardening | AGRICULTURE | |
option | Photosynthesis podcast | project | 3 | 180 | music | ARTS | approval |
option | Energy reading and quiz | reading | 1 | 45 | | | |
pathway | Ecosystems | ECO | Who eats whom, where matter goes, and what people change.
step | Who eats whom | ECO.1 | | Build a food web and follow the energy.
option | Schoolyard biodiversity survey | offline_hands_on | 2 | 120 | animals, the outdoors
    | AGRICULTURE | approval | Survey a square metre of the schoolyard with a partner and
    build its food web. You leave the building, so ask first.
option | Food web strategy game | online | 1 | 40 | gaming | INFORMATION_TECHNOLOGY | |
option | Nature documentary notes | video | 2 | 60 | animals | | |
option | What is on your plate? | real_world_task | 3 | 90 | cooking | AGRICULTURE, HOSPITALITY
    | | Trace one meal back through the food chains it comes from.
step | Cycles of matter | ECO.2 | ECO.1, CELL.4 | Carbon and nitrogen: nothing is lost.
option | Compost column | offline_hands_on | 2 | 120 | gardening, plants | AGRICULTURE | |
option | Carbon cycle comic | project | 2 | 90 | art, drawing | ARTS | |
option | Reading: the nitrogen cycle | reading | 1 | 40 | | | |
step | People and ecosystems | ECO.3 | ECO.1 |
    How do people change an ecosystem, and what can we do about it?
option | Interview a ranger or a farmer | real_world_task | 3 | 120 | animals, the outdoors
    | AGRICULTURE, GOVERNMENT | approval |
option | Class debate: build on the wetland? | discussion | 2 | 60 | | LAW, GOVERNMENT | |
option | Campaign song or video | project | 2 | 120 | music, gaming | ARTS, MARKETING | |
"""

# key | interests | career clusters | preferred ways of learning | career goal
PROFILES = """
A | animals, drawing | AGRICULTURE | offline_hands_on, project |
    I want to be a vet or work at a wildlife rescue.
B | sports, football | HEALTH_SCIENCE | real_world_task, video | Physiotherapist for a team.
C | music, guitar | ARTS | project, discussion | Sound engineer or music producer.
D | gaming, coding | INFORMATION_TECHNOLOGY, STEM | online, video | Make educational games.
E | cooking, baking | HOSPITALITY | offline_hands_on | Open my own bakery one day.
F | plants, gardening | AGRICULTURE, STEM | offline_hands_on |
    Work in conservation or on an organic farm.
G | medicine, reading | HEALTH_SCIENCE | reading | Become a nurse, maybe a doctor.
H | dance, music, art | ARTS | project, video |
I | the outdoors, animals, fishing | AGRICULTURE, LAW | real_world_task | Park ranger.
J | gaming, sports | | video, online | Not sure yet.
K | cooking, sports | HEALTH_SCIENCE, HOSPITALITY | real_world_task | Sports dietitian.
"""
PROFILE_OF = "ABCDEFGHIJKABCDEFGHIJKABCDE-G-"
"""The profile of each student, s01 to s30 (a dash: the student has not filled one in)."""

# Points on each competency, oldest first; the observations are spread over the past weeks.
HISTORY: dict[int, dict[str, tuple[int, ...]]] = {
    1: {"CELL.1": (2, 3, 4), "CELL.2": (3,), "SKL.1": (3, 4), "SKL.2": (3,)},
    2: {"CELL.1": (2, 2), "SKL.1": (2, 3), "SKL.2": (2,)},
    3: {"CELL.1": (1, 2), "SKL.2": (2, 2)},
    4: {"CELL.1": (2,), "SKL.1": (3,)},
    5: {"CELL.1": (3, 3), "CELL.2": (2,), "SKL.1": (3,), "SKL.2": (4,)},
    6: {"CELL.1": (1,), "SKL.2": (1, 2)},
    7: {"SKL.1": (3,), "SKL.2": (3,)},
    8: {"CELL.1": (2, 3), "SKL.1": (4,)},
    10: {"CELL.1": (1, 2), "SKL.2": (2,)},
    11: {"CELL.1": (3, 4), "CELL.2": (3,), "SKL.1": (3,)},
    12: {"CELL.1": (3, 4), "SKL.1": (2, 3), "SKL.2": (3, 3)},
    13: {"CELL.1": (2,), "SKL.2": (3,)},
    15: {"CELL.1": (3,), "CELL.2": (3, 4), "SKL.1": (4,), "SKL.2": (4,)},
    17: {"CELL.1": (2, 3), "SKL.1": (3,)},
    19: {"CELL.1": (1, 1, 2), "SKL.2": (1, 2)},
    20: {"CELL.1": (4,), "SKL.1": (3,)},
    22: {"CELL.1": (2, 3), "SKL.2": (3,)},
    25: {"CELL.1": (3,), "SKL.1": (2,)},
}

# The teacher's note on each observation, by competency.
NOTES = {
    "CELL.1": "Labelled cell diagram and exit ticket.",
    "CELL.2": "Microscope drawing, checked at the bench.",
    "SKL.1": "Observed during group work.",
    "SKL.2": "Planner and deadlines this week.",
}

# (student, pathway, step, option, how far): choices made before the demo starts.
CHOICES: tuple[tuple[int, str, str, str, str], ...] = (
    (1, "Cells and life", "Meet the cell", "Build a 3D cell model", "done"),
    (1, "Cells and life", "Look through the microscope", "Onion and cheek cell lab", "approved"),
    (4, "Cells and life", "Meet the cell", "Build a 3D cell model", "chosen"),
    (5, "Cells and life", "Meet the cell", "Edible cell cake", "done"),
    (7, "Cells and life", "Meet the cell", "Virtual cell tour", "submitted"),
    (9, "Ecosystems", "Who eats whom", "Schoolyard biodiversity survey", "chosen"),
    (11, "Cells and life", "Meet the cell", "Muscle cells and the athlete", "done"),
    (12, "Cells and life", "Meet the cell", "Virtual cell tour", "done"),
    (12, "Cells and life", "Look through the microscope", "Microscope simulator", "in_progress"),
    (15, "Cells and life", "Meet the cell", "Muscle cells and the athlete", "done"),
    (20, "Ecosystems", "Who eats whom", "Food web strategy game", "chosen"),
)

# student | goal | target in days from today | status
GOALS = (
    (1, "Reach Advanced on cell structure", 14, GoalStatus.MET),
    (1, "Finish the microscope step before the holidays", 21, GoalStatus.IN_PROGRESS),
    (2, "Hand in every step on time this unit", 28, GoalStatus.IN_PROGRESS),
    (4, "Ask for help when I get stuck instead of waiting", 21, GoalStatus.NOT_STARTED),
    (8, "Try a hands-on option at least once", 30, GoalStatus.NOT_STARTED),
    (12, "Get to Proficient in microscopy", 21, GoalStatus.IN_PROGRESS),
    (15, "Lead my group's schoolyard survey", 35, GoalStatus.NOT_STARTED),
    (19, "Get to Developing on cell structure", 14, GoalStatus.IN_PROGRESS),
)
CHECK_INS = (4, 12)
"""Students the teacher held a check-in with last week."""
